//! Bad input gives its own clear error, naming the file and key, for every loader.

use wlm_data::{
    encode_npy, load_csv, load_particles_npz, parse_csv, parse_npy_snapshots, parse_particles_npz,
    parse_snapmmd_npz, write_npy, write_particles_npz, Snapshots,
};

use crate::{raw_npy, zip_archive, Entries};

/// Bytes, caller times, expected message.
type NpyCase<'a> = (Vec<u8>, Option<&'a [f64]>, &'a str);

fn positions(t: usize) -> Vec<u8> {
    encode_npy(
        &[t, 2, 2],
        &(0..t * 4).map(|v| v as f64).collect::<Vec<_>>(),
    )
    .unwrap()
}

fn npz_message(entries: &[(&str, Vec<u8>)]) -> String {
    parse_particles_npz(&zip_archive(entries), None)
        .unwrap_err()
        .to_string()
}

fn assert_contains(msg: &str, expected: &str) {
    assert!(msg.contains(expected), "expected {expected:?} in {msg:?}");
}

#[test]
fn broken_archives_are_reported() {
    let good = zip_archive(&[("positions.npy", positions(3))]);
    assert_contains(
        &parse_particles_npz(&[], None).unwrap_err().to_string(),
        "<memory>: empty file: not an .npz (zip) archive",
    );
    assert_contains(
        &parse_particles_npz(&good[..good.len() / 2], None)
            .unwrap_err()
            .to_string(),
        "not a readable .npz (zip) archive",
    );
    assert_contains(
        &parse_particles_npz(b"this is not a zip archive", None)
            .unwrap_err()
            .to_string(),
        "not a readable .npz (zip) archive",
    );
    // A corrupt byte inside the stored data: the CRC check catches it.
    let stored = {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.npz");
        let s = Snapshots::new(vec![0.0], 1, vec![vec![1.0, 2.0, 3.0]], None).unwrap();
        write_particles_npz(&path, &s).unwrap();
        std::fs::read(path).unwrap()
    };
    let at = stored
        .windows(8)
        .position(|w| w == 2.0f64.to_le_bytes())
        .unwrap();
    let mut corrupt = stored.clone();
    corrupt[at + 7] ^= 0x10;
    assert_contains(
        &parse_particles_npz(&corrupt, None).unwrap_err().to_string(),
        "key `positions`: cannot read the archive entry",
    );
}

/// Found by the `particles_npz` fuzz target: a few hundred bytes whose entry declares
/// gigabytes uncompressed made the loader reserve them before reading.
#[test]
fn an_entry_declaring_more_than_its_compressed_bytes_can_hold_is_an_error() {
    let mut bytes = zip_archive(&[("positions.npy", positions(3))]);
    let declared = 4_000_000_000u32.to_le_bytes();
    // The uncompressed size in the local header (offset 22) and the central directory (24).
    for (signature, offset) in [(b"PK\x03\x04", 22), (b"PK\x01\x02", 24)] {
        let at = bytes.windows(4).position(|w| w == signature).unwrap();
        bytes[at + offset..at + offset + 4].copy_from_slice(&declared);
    }
    assert!(bytes.len() < 1000, "{} bytes", bytes.len());
    let msg = parse_particles_npz(&bytes, None).unwrap_err().to_string();
    assert_contains(
        &msg,
        "<memory>: key `positions`: the archive entry \"positions.npy\" declares 4000000000 \
         bytes uncompressed, more than its",
    );
    assert_contains(&msg, "compressed bytes (Deflated) can hold");
}

#[test]
fn entry_problems_name_the_key() {
    let complex = raw_npy(
        "{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }",
        &[0; 16],
    );
    let ragged = raw_npy(
        "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }",
        &[0; 16],
    );
    let ints = raw_npy(
        "{'descr': '<i8', 'fortran_order': False, 'shape': (1, 1, 1), }",
        &[0; 8],
    );
    let nan = encode_npy(&[2, 1, 2], &[0.0, 1.0, 2.0, f64::NAN]).unwrap();
    let truncated = positions(2)[..100].to_vec();
    let cases: Vec<(Entries, &str)> = vec![
        (
            vec![("pos.npy", positions(2))],
            "key `positions`: missing: the archive holds [\"pos\"]",
        ),
        (
            vec![("positions.npy", ints)],
            "key `positions`: dtype \"<i8\" is not float32 or float64",
        ),
        (
            vec![("positions.npy", complex)],
            "key `positions`: unsupported dtype \"<c16\"",
        ),
        (
            vec![("positions.npy", ragged)],
            "key `positions`: unsupported dtype \"|O\"",
        ),
        (
            vec![("positions.npy", encode_npy(&[2, 4], &[0.0; 8]).unwrap())],
            "expected rank 3 (T, N, d), got rank 2 with shape [2, 4]",
        ),
        (
            vec![("positions.npy", encode_npy(&[2, 0, 2], &[]).unwrap())],
            "has a zero dimension",
        ),
        (
            vec![("positions.npy", nan)],
            "key `positions`: snapshot 1, point 0, coordinate 1 is not finite (NaN)",
        ),
        (
            vec![("positions.npy", truncated)],
            "key `positions`: truncated NPY",
        ),
        (
            vec![("positions.npy", Vec::new())],
            "key `positions`: empty input",
        ),
        (
            vec![
                ("positions.npy", positions(2)),
                ("velocities.npy", positions(3)),
            ],
            "key `velocities`: shape [3, 2, 2] differs from the shape [2, 2, 2] of `positions`",
        ),
        (
            vec![
                ("positions.npy", positions(1)),
                (
                    "velocities.npy",
                    encode_npy(&[1, 2, 2], &[f64::NAN, 0.0, 0.0, 0.0]).unwrap(),
                ),
            ],
            "key `velocities`: snapshot 0, point 0, coordinate 0 is not finite (NaN)",
        ),
        (
            vec![
                ("positions.npy", positions(3)),
                ("times.npy", encode_npy(&[3], &[0.0, 1.0, 1.0]).unwrap()),
            ],
            "key `times`: times: times must be strictly increasing, got 1 at index 2 after 1",
        ),
        (
            vec![
                ("positions.npy", positions(2)),
                (
                    "times.npy",
                    encode_npy(&[2], &[0.0, f64::INFINITY]).unwrap(),
                ),
            ],
            "key `times`: times: time 1 is not finite (inf)",
        ),
        (
            vec![
                ("positions.npy", positions(2)),
                ("times.npy", encode_npy(&[3], &[0.0, 1.0, 2.0]).unwrap()),
            ],
            "key `times`: times: 3 values for 2 snapshots",
        ),
    ];
    for (entries, expected) in cases {
        assert_contains(&npz_message(&entries), expected);
    }
}

#[test]
fn snapmmd_problems_name_the_key() {
    let xs = positions(2);
    let cases: Vec<(Entries, &str)> = vec![
        (vec![("Xs.npy", xs.clone())], "key `dts`: missing"),
        (
            vec![("dts.npy", encode_npy(&[2], &[0.0, 1.0]).unwrap())],
            "key `Xs`: missing",
        ),
        (
            vec![
                ("Xs.npy", xs.clone()),
                ("dts.npy", encode_npy(&[2], &[1.0, 0.5]).unwrap()),
            ],
            "key `dts`: times: times must be strictly increasing, got 0.5 at index 1 after 1",
        ),
        (
            vec![
                ("Xs.npy", xs),
                ("dts.npy", encode_npy(&[2, 1], &[0.0, 1.0]).unwrap()),
            ],
            "key `dts`: expected rank 1 (T,), got shape [2, 1]",
        ),
    ];
    for (entries, expected) in cases {
        assert_contains(
            &parse_snapmmd_npz(&zip_archive(&entries))
                .unwrap_err()
                .to_string(),
            expected,
        );
    }
}

#[test]
fn npy_snapshot_problems_are_reported() {
    let cases: Vec<NpyCase> = vec![
        (Vec::new(), None, "<memory>: empty input"),
        (positions(2)[..50].to_vec(), None, "truncated NPY"),
        (
            encode_npy(&[4], &[0.0; 4]).unwrap(),
            None,
            "expected rank 3 (T, N, d), got rank 1",
        ),
        (
            positions(2),
            Some(&[0.0, 0.0]),
            "times given by the caller: times must be strictly increasing",
        ),
        (
            positions(2),
            Some(&[0.0, f64::NAN]),
            "times given by the caller: time 1 is not finite (NaN)",
        ),
        (
            encode_npy(&[1, 1, 1], &[f64::NEG_INFINITY]).unwrap(),
            None,
            "snapshot 0, point 0, coordinate 0 is not finite (-inf)",
        ),
    ];
    for (bytes, times, expected) in cases {
        assert_contains(
            &parse_npy_snapshots(&bytes, times).unwrap_err().to_string(),
            expected,
        );
    }
}

#[test]
fn csv_problems_name_the_line_and_column() {
    let cases: Vec<(&[u8], &str)> = vec![
        (b"", "<memory>: empty file"),
        (b"\n \n", "empty file"),
        (
            b"t,x0\n0,1\n",
            "line 1 (header): the first column must be `time`, found `t`",
        ),
        (b"time\n0\n", "no position columns"),
        (b"time,x0,x2\n0,1,2\n", "column 3 must be `x1`, found `x2`"),
        (b"time,x0,x1,v0\n", "1 columns after the 2 position columns"),
        (b"time,x0,w0\n", "column 3 must be `v0`, found `w0`"),
        (b"time,x0\n", "no data rows after the header"),
        (
            b"time,x0,x1\n0,1,2\n0,1\n",
            "line 3: 2 fields but the header has 3 columns",
        ),
        (
            b"time,x0,x1\n0,1,2,3\n",
            "line 2: 4 fields but the header has 3 columns",
        ),
        (
            b"time,x0,x1\n0,1,abc\n",
            "key `x1`: line 2: cannot parse \"abc\" as a number",
        ),
        (
            b"time,x0,x1\n0,1,NaN\n",
            "key `x1`: line 2: value is not finite (NaN)",
        ),
        (
            b"time,x0\ninf,1\n",
            "key `time`: line 2: value is not finite (inf)",
        ),
        (
            b"time,x0,v0\n0,1,2\n0,1,\n",
            "key `v0`: snapshot at time 0: line 2 has velocities but line 3 has none",
        ),
        (
            b"time,x0\n0,\xff\n",
            "not UTF-8 text: invalid byte at offset 10",
        ),
    ];
    for (bytes, expected) in cases {
        assert_contains(&parse_csv(bytes).unwrap_err().to_string(), expected);
    }
}

#[test]
fn missing_files_and_unwritable_layouts_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.npz");
    let msg = load_particles_npz(&missing, None).unwrap_err().to_string();
    assert_contains(&msg, "nope.npz");
    assert_contains(
        &load_csv(dir.path().join("nope.csv"))
            .unwrap_err()
            .to_string(),
        "nope.csv",
    );

    let uneven = Snapshots::new(vec![0.0, 1.0], 1, vec![vec![1.0], vec![1.0, 2.0]], None).unwrap();
    let msg = write_particles_npz(dir.path().join("u.npz"), &uneven)
        .unwrap_err()
        .to_string();
    assert_contains(
        &msg,
        "a particle .npz needs clouds of equal size: snapshot 1 has 2 points, snapshot 0 has 1",
    );
    assert_contains(
        &write_npy(dir.path().join("u.npy"), &uneven)
            .unwrap_err()
            .to_string(),
        "equal size",
    );
    // Nothing was left behind by the failed writes.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
