//! Fixtures shared by the wire tests: the worked LISP messages of protocols.md §3.11 and §4.7,
//! and HSRP v1 packets with the default timers.
#![allow(dead_code)] // each test file uses its own part

use std::net::{IpAddr, Ipv4Addr};

use roamer_control::wire::hsrp::{HsrpAuth, HsrpOpCode, HsrpState, HsrpV1Repr};
use roamer_control::wire::lisp::{
    Action, Address, EidPrefix, EidRecord, LocatorRecord, MapRegister, MapReply, MapRequest,
};
use roamer_control::wire::reliable::{RefreshScope, ReliableMessage};

/// The address written `s`.
#[allow(clippy::unwrap_used)] // test fixture: a bad literal is a failed test
pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// The §3.11 record: 172.16.1.0/24, TTL 1440, A=1, RLOC 10.1.1.1 pri 1 wgt 100, L=1 R=1.
pub fn worked_record(iid: Option<u32>) -> EidRecord {
    let eid = match iid {
        None => Address::Ip(v4(172, 16, 1, 0)),
        Some(iid) => Address::InstanceId {
            iid,
            mask_len: 0,
            addr: Some(v4(172, 16, 1, 0)),
        },
    };
    EidRecord::authoritative(
        EidPrefix { eid, mask_len: 24 },
        1440,
        vec![LocatorRecord::local(v4(10, 1, 1, 1), 1, 100)],
    )
}

pub fn worked_register(iid: Option<u32>) -> MapRegister {
    MapRegister::new(vec![worked_record(iid)])
}

pub fn smr_struct() -> MapRequest {
    MapRequest {
        probe: true,
        smr: true,
        dont_map_reply: true,
        ..MapRequest::query(
            0x68E4_5971_E3DF_4931,
            Address::Ip(v4(172, 16, 1, 10)),
            vec![v4(10, 1, 1, 1)],
            vec![EidPrefix {
                eid: Address::Ip(v4(192, 168, 0, 22)),
                mask_len: 32,
            }],
        )
    }
}

pub fn smr_invoked_struct() -> MapRequest {
    MapRequest {
        smr_invoked: true,
        ..MapRequest::query(
            0x4D04_AB2F_99FF_6FF5,
            Address::Ip(v4(192, 168, 0, 22)),
            vec![v4(10, 2, 2, 2)],
            vec![EidPrefix {
                eid: Address::Ip(v4(172, 16, 1, 10)),
                mask_len: 32,
            }],
        )
    }
}

pub fn map_reply_struct() -> MapReply {
    MapReply {
        probe: false,
        echo_nonce_capable: false,
        lisp_sec: false,
        nonce: 0x4D04_AB2F_99FF_6FF5,
        records: vec![EidRecord::authoritative(
            EidPrefix {
                eid: Address::Ip(v4(172, 16, 1, 10)),
                mask_len: 32,
            },
            1440,
            vec![LocatorRecord::local(v4(10, 3, 3, 3), 1, 100)],
        )],
    }
}

pub fn neg_map_reply_struct() -> MapReply {
    MapReply {
        probe: false,
        echo_nonce_capable: false,
        lisp_sec: false,
        nonce: 1,
        records: vec![EidRecord {
            ttl: 15,
            prefix: EidPrefix {
                eid: Address::Ip(v4(10, 0, 0, 0)),
                mask_len: 8,
            },
            action: Action::NativelyForward,
            authoritative: false,
            map_version: 0,
            locators: vec![],
        }],
    }
}

/// A Registration-Refresh for exactly 172.16.1.0/24 in instance 101, rejected registrations only.
pub fn refresh_iid101() -> ReliableMessage {
    ReliableMessage::RegistrationRefresh {
        scope: RefreshScope::Exact,
        rejected_only: true,
        eid: Some(EidPrefix {
            eid: Address::InstanceId {
                iid: 101,
                mask_len: 0,
                addr: Some(v4(172, 16, 1, 0)),
            },
            mask_len: 24,
        }),
    }
}

/// An HSRP v1 packet with the default timers (hello 3 s, hold 10 s).
pub fn hsrp_v1(
    op_code: HsrpOpCode,
    state: HsrpState,
    priority: u8,
    group: u8,
    auth: HsrpAuth,
    virtual_ip: Ipv4Addr,
) -> HsrpV1Repr {
    HsrpV1Repr {
        op_code,
        state,
        hellotime: 3,
        holdtime: 10,
        priority,
        group,
        auth,
        virtual_ip,
    }
}
