//! Integration tests of `wlm-data`: real data files, round trips, bad input, GF-SDE statistics.

mod bad_input;
mod fuzz_props;
mod gf_sde;
mod h5ad;
mod real_data;
#[path = "../../../testing/shared_folder.rs"]
mod shared_folder;
mod trajectorynet;

use std::io::{Cursor, Write};
use std::path::PathBuf;

use zip::write::SimpleFileOptions;
use zip::ZipWriter;

/// `../shared/data` (the shared data sets), or `None` with a printed message if absent (a
/// failure under `CI=true`).
pub(crate) fn shared_data(what: &str) -> Option<PathBuf> {
    let dir = shared_folder::shared("data");
    if dir.is_none() {
        println!("skipped: {what}");
    }
    dir
}

/// Named archive entries: `(file name in the archive, bytes)`.
pub(crate) type Entries<'a> = Vec<(&'a str, Vec<u8>)>;

/// A zip archive (deflated) holding the given entries.
pub(crate) fn zip_archive(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        zip.start_file(*name, SimpleFileOptions::default()).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// A version 1.0 NPY file with the given header dictionary and raw data bytes.
pub(crate) fn raw_npy(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}
