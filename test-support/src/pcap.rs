//! A minimal pcap (libpcap classic format) writer and `tshark`, for the wire-format checks.

use std::io::{self, Write};

/// Link type 1: Ethernet.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// tshark preferences that verify the IP, UDP and TCP checksums (a bad one is an expert
/// warning).
pub const CHECK_CHECKSUMS: [&str; 6] = [
    "-o",
    "ip.check_checksum:TRUE",
    "-o",
    "udp.check_checksum:TRUE",
    "-o",
    "tcp.check_checksum:TRUE",
];

/// Writes classic pcap records (microsecond timestamps) to any writer.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header for Ethernet frames.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        out.write_all(&65535u32.to_le_bytes())?;
        out.write_all(&LINKTYPE_ETHERNET.to_le_bytes())?;
        Ok(Self { out })
    }

    /// Appends one frame with the given timestamp (seconds, microseconds).
    pub fn write_frame(&mut self, secs: u32, micros: u32, frame: &[u8]) -> io::Result<()> {
        let len = u32::try_from(frame.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
        self.out.write_all(&secs.to_le_bytes())?;
        self.out.write_all(&micros.to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(frame)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Runs `tshark` with `args` and returns what it printed; the error says why it could not run
/// or what it complained about. The wire-format tests check every capture with it.
pub fn tshark(args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new("tshark")
        .args(args)
        .output()
        .map_err(|e| format!("tshark is required and could not run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "tshark {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// [`tshark`], panicking with its error: the wire-format tests need it.
#[track_caller]
pub fn tshark_ok(args: &[&str]) -> String {
    tshark(args).unwrap_or_else(|e| panic!("{e}"))
}

/// What tshark prints for frame `number` (from 1) of the capture at `path`, read with the
/// preferences `prefs`: `frame.protocols`, then `fields`, separated by `|` ("" when there is no
/// such frame).
#[track_caller]
pub fn frame_fields(path: &str, number: usize, prefs: &[&str], fields: &[&str]) -> String {
    let filter = format!("frame.number == {number}");
    let mut args = vec![
        "-r",
        path,
        "-Y",
        &filter,
        "-T",
        "fields",
        "-E",
        "separator=|",
    ];
    args.extend_from_slice(prefs);
    args.extend_from_slice(&["-e", "frame.protocols"]);
    for f in fields {
        args.extend_from_slice(&["-e", f]);
    }
    let out = tshark_ok(&args);
    out.lines().next().unwrap_or_default().to_string()
}

/// Asserts that frame `number` (from 1) of the capture at `path`, read with `prefs`, decodes as
/// the protocol stack `protocols` with `fields` (a field and its expected value); `name` names
/// the case in a failure.
#[track_caller]
pub fn assert_frame(
    path: &str,
    number: usize,
    prefs: &[&str],
    name: &str,
    protocols: &str,
    fields: &[(&str, String)],
) {
    let names: Vec<&str> = fields.iter().map(|(f, _)| *f).collect();
    let line = frame_fields(path, number, prefs, &names);
    let cols: Vec<&str> = line.split('|').collect();
    assert_eq!(cols.first().copied(), Some(protocols), "{name}: {line}");
    for (k, (field, want)) in fields.iter().enumerate() {
        assert_eq!(
            cols.get(k + 1).copied(),
            Some(want.as_str()),
            "{name}: field {field} in {line}"
        );
    }
}

/// Asserts that tshark's expert summary of the capture at `path`, read with `prefs`
/// (`-q -z expert`), names none of `severities`.
#[track_caller]
pub fn assert_expert_summary_without(path: &str, prefs: &[&str], severities: &[&str]) {
    // The headings tshark prints: a name it never prints would make the check unfailable.
    const HEADINGS: [&str; 5] = ["Errors", "Warns", "Notes", "Chats", "Comments"];
    for sev in severities {
        assert!(
            HEADINGS.contains(sev),
            "'{sev}' is not a heading of tshark's expert summary ({HEADINGS:?})"
        );
    }
    let summary = tshark_ok(&[&["-r", path, "-q", "-z", "expert"], prefs].concat());
    for sev in severities {
        assert!(
            !summary.contains(sev),
            "expert summary reports {sev}:\n{summary}"
        );
    }
}

/// Writes `frames` to a new pcap file at `path`, frame `i` stamped 1,700,000,000 s and `i` µs.
pub fn write_frames<'a>(
    path: &std::path::Path,
    frames: impl IntoIterator<Item = &'a [u8]>,
) -> io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut w = PcapWriter::new(io::BufWriter::new(file))?;
    for (i, frame) in frames.into_iter().enumerate() {
        let micros = u32::try_from(i).map_err(|_| io::Error::other("too many frames"))?;
        w.write_frame(1_700_000_000, micros, frame)?;
    }
    w.into_inner().flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_record_layout() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_frame(1, 2, &[0xaa; 3]).unwrap();
        let bytes = w.into_inner();
        assert_eq!(bytes.len(), 24 + 16 + 3);
        assert_eq!(&bytes[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(&bytes[20..24], &[1, 0, 0, 0]);
        assert_eq!(&bytes[32..36], &[3, 0, 0, 0]);
    }
}
