//! The sim backend behind the capacity wrapper enforces the catalogue's numbers per card.

use roamer_hal::contract::sample_entry;
use roamer_hal::{
    Accounted, Backend, BackendKind, Catalogue, HalError, LISP_LICENSE, LinecardSpec, PlatformSpec,
    ProfileKind, SlotId, TableKind, TableOp,
};
use roamer_platforms::sim::SimBackend;
use roamer_platforms::{FeatureRequest, plan};

#[test]
fn table_full_carries_the_catalogue_capacity_of_the_card() {
    let catalogue = Catalogue::builtin().expect("catalogue");
    let spec = PlatformSpec {
        profile: ProfileKind::N7k,
        release: Some("8.2(1)".parse().expect("release")),
        licenses: vec![LISP_LICENSE.into()],
        backend: BackendKind::Sim,
        linecards: vec![LinecardSpec {
            slot: SlotId(1),
            model: "N7K-M132XP-12".into(),
            epld: Some("186.008".parse().expect("epld")),
        }],
        ports: Default::default(),
        port_io: Default::default(),
    };
    let plan = plan(
        &spec,
        FeatureRequest {
            lisp: true,
            ..Default::default()
        },
        &catalogue,
    )
    .expect("plan");
    let capacity = catalogue
        .get("N7K-M132XP-12")
        .and_then(|m| m.capacity_of(TableKind::RouterMac))
        .expect("router_mac capacity in the catalogue");
    let mut backend = Accounted::new(SimBackend::default(), plan.capacity_scopes());

    let fill: Vec<TableOp> = (0..capacity)
        .map(|n| TableOp::add(sample_entry(TableKind::RouterMac, n)))
        .collect();
    assert!(backend.apply(&fill).iter().all(Result::is_ok));

    let over = backend.apply(&[TableOp::add(sample_entry(TableKind::RouterMac, capacity))]);
    match &over[0] {
        Err(
            e @ HalError::TableFull {
                table,
                scope,
                capacity: reported,
            },
        ) => {
            assert_eq!(*table, TableKind::RouterMac);
            assert_eq!(*reported, capacity);
            assert_eq!(scope, "slot 1 (N7K-M132XP-12)");
            assert_eq!(
                e.to_string(),
                format!(
                    "router MAC table full on slot 1 (N7K-M132XP-12): capacity {capacity} entries"
                )
            );
        }
        other => panic!("expected TableFull, got {other:?}"),
    }
    assert_eq!(
        backend
            .entries(TableKind::RouterMac)
            .expect("sim lists its tables")
            .len() as u32,
        capacity
    );
    let usage = backend.usage();
    assert!(
        usage.iter().any(|u| u.table == TableKind::RouterMac
            && u.used == capacity
            && u.capacity == capacity)
    );
}
