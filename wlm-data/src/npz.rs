//! NPZ archives (zip files of `.npy` arrays): the particle layout (ocean files, predictions)
//! and the snapMMD layout, with a writer for the particle layout.

use std::io::{Cursor, Read, Write};
use std::path::Path;

use zip::result::ZipError;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::fs::{read_file, write_atomic};
use crate::npy::{encode_npy, parse_npy, NpyArray};
use crate::particles::{
    check_times, equal_size, fail, float_tnd, split_tnd, times_or_default, velocities_with_nan,
};
use crate::{Error, Result, Snapshots};

/// The file name used in errors for bytes parsed without a file.
pub(crate) const MEMORY: &str = "<memory>";

/// An opened `.npz` archive that reads arrays by key.
pub(crate) struct Npz<'a> {
    archive: ZipArchive<Cursor<&'a [u8]>>,
    path: &'a Path,
    /// Most bytes one entry may decompress to: the memory available when the archive was
    /// opened (`None`: unknown, only the declared size bounds the read).
    limit: Option<u64>,
    /// Length of the archive in bytes: no entry's compressed data is longer.
    archive_len: u64,
}

/// Most bytes deflate expands one compressed byte to (258-byte matches coded in two bits).
const MAX_DEFLATE_RATIO: u64 = 1032;

impl<'a> Npz<'a> {
    /// Opens the archive held in `bytes` (read from `path`).
    pub(crate) fn open(bytes: &'a [u8], path: &'a Path) -> Result<Self> {
        Self::open_with_limit(bytes, path, wlm_numeric::available_memory_bytes())
    }

    /// [`Npz::open`] with an explicit bound on the uncompressed size of an entry.
    fn open_with_limit(bytes: &'a [u8], path: &'a Path, limit: Option<u64>) -> Result<Self> {
        if bytes.is_empty() {
            return Err(Error::Format {
                path: path.to_owned(),
                problem: "empty file: not an .npz (zip) archive".into(),
            });
        }
        let archive = ZipArchive::new(Cursor::new(bytes)).map_err(|e| Error::Format {
            path: path.to_owned(),
            problem: format!("not a readable .npz (zip) archive: {e}"),
        })?;
        Ok(Self {
            archive,
            path,
            limit,
            archive_len: bytes.len() as u64,
        })
    }

    fn entry_name(&self, key: &str) -> Option<String> {
        let with_ext = format!("{key}.npy");
        [with_ext, key.to_owned()]
            .into_iter()
            .find(|name| self.archive.index_for_name(name).is_some())
    }

    /// Whether the archive has an array named `key`.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.entry_name(key).is_some()
    }

    fn keys(&self) -> Vec<String> {
        self.archive
            .file_names()
            .filter_map(|n| n.ok())
            .map(|n| n.strip_suffix(".npy").unwrap_or(&n).to_owned())
            .collect()
    }

    /// Reads and parses the array `key`.
    pub(crate) fn array(&mut self, key: &str) -> Result<NpyArray> {
        let err = |problem: String| Error::Key {
            path: self.path.to_owned(),
            key: key.to_owned(),
            problem,
        };
        let Some(name) = self.entry_name(key) else {
            let mut keys = self.keys();
            keys.sort();
            return Err(err(format!("missing: the archive holds {keys:?}")));
        };
        let limit = self.limit;
        let archive_len = self.archive_len;
        let mut bytes = Vec::new();
        let read = match self.archive.by_name(&name) {
            Ok(file) => {
                // The declared size bounds the read (one byte more, so that the reader reaches
                // its end and checks the CRC), and must itself fit: a few kilobytes of deflate
                // can declare and expand to gigabytes.
                let declared = file.size();
                // Nor may it exceed what the compressed bytes can expand to (deflate at most
                // 1032:1, a stored entry not at all): a few hundred bytes that declare
                // gigabytes would otherwise reserve them before the first byte is read.
                let compressed = file.compressed_size().min(archive_len);
                let reachable = match file.compression() {
                    CompressionMethod::Stored => compressed,
                    _ => compressed
                        .saturating_add(1)
                        .saturating_mul(MAX_DEFLATE_RATIO),
                };
                if declared > reachable {
                    return Err(err(format!(
                        "the archive entry {name:?} declares {declared} bytes uncompressed, more \
                         than its {compressed} compressed bytes ({:?}) can hold",
                        file.compression()
                    )));
                }
                if let Some(limit) = limit.filter(|&l| declared > l) {
                    return Err(err(format!(
                        "the archive entry {name:?} declares {declared} bytes uncompressed \
                         ({} compressed), more than the {limit} bytes of memory available",
                        file.compressed_size()
                    )));
                }
                match usize::try_from(declared)
                    .ok()
                    .and_then(|d| bytes.try_reserve_exact(d).ok())
                {
                    Some(()) => file
                        .take(declared.saturating_add(1))
                        .read_to_end(&mut bytes)
                        .map_err(ZipError::Io),
                    None => {
                        return Err(err(format!(
                            "the archive entry {name:?} declares {declared} bytes \
                             uncompressed, which cannot be allocated"
                        )))
                    }
                }
            }
            Err(e) => Err(e),
        };
        if let Err(e) = read {
            return Err(err(format!("cannot read the archive entry {name:?}: {e}")));
        }
        parse_npy(&bytes).map_err(|e| err(e.to_string()))
    }
}

/// The names of the arrays of an `.npz` archive (entry names without their `.npy` suffix), in
/// archive order.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Format`] for an empty file or a broken
/// archive.
pub fn npz_keys(path: impl AsRef<Path>) -> Result<Vec<String>> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    Ok(Npz::open(&bytes, path)?.keys())
}

/// Reads one array of an `.npz` archive by key (`key` or `key.npy`).
///
/// # Errors
/// As [`npz_keys`]; [`Error::Key`] naming the key when it is missing (listing the keys
/// there are), when its entry declares more bytes than the memory available or than its
/// compressed bytes can expand to, or when it is not a valid NPY array.
pub fn load_npz_array(path: impl AsRef<Path>, key: &str) -> Result<NpyArray> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    Npz::open(&bytes, path)?.array(key)
}

/// Loads a particle `.npz`: key `positions` shaped `(T, N, d)` and optional `velocities` of the
/// same shape (the ocean files of the WLM reference, and what [`write_particles_npz`] writes).
///
/// Times: `times` if given; otherwise the archive's `times` key `(T,)` if it has one (written by
/// [`write_particles_npz`]); otherwise `0, 1, …, T−1`. A velocity snapshot that is entirely
/// NaN means "no velocities for this snapshot" (that is how the writer stores them).
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Format`] for an empty file or a broken
/// archive; [`Error::Key`] naming the key for a missing `positions`, a malformed NPY entry,
/// a non-float dtype, a rank other than 3, mismatched shapes, non-finite values (naming
/// snapshot, point and coordinate), or times of the wrong length, non-finite or not strictly
/// increasing.
pub fn load_particles_npz(path: impl AsRef<Path>, times: Option<&[f64]>) -> Result<Snapshots> {
    let path = path.as_ref();
    particles_npz(&read_file(path)?, path, times)
}

/// [`load_particles_npz`] on the bytes of an archive; errors name the file `<memory>`.
///
/// # Errors
/// As [`load_particles_npz`], without the I/O errors.
pub fn parse_particles_npz(bytes: &[u8], times: Option<&[f64]>) -> Result<Snapshots> {
    particles_npz(bytes, Path::new(MEMORY), times)
}

fn particles_npz(bytes: &[u8], path: &Path, times: Option<&[f64]>) -> Result<Snapshots> {
    let mut npz = Npz::open(bytes, path)?;
    let positions = npz.array("positions")?;
    let (t, n, d) = float_tnd(&positions, path, Some("positions"))?;
    let times = match times {
        Some(_) => times_or_default(times, t, path, None)?,
        None if npz.has("times") => {
            let array = npz.array("times")?;
            rank1_times(&array, t, path, "times")?
        }
        None => times_or_default(None, t, path, None)?,
    };
    let clouds = split_tnd(&positions.data, t, n, d, path, Some("positions"), false)?;
    let velocities = if npz.has("velocities") {
        let array = npz.array("velocities")?;
        float_tnd(&array, path, Some("velocities"))?;
        if array.shape != positions.shape {
            return Err(fail(
                path,
                Some("velocities"),
                format!(
                    "shape {:?} differs from the shape {:?} of `positions`",
                    array.shape, positions.shape
                ),
            ));
        }
        Some(split_tnd(
            &array.data,
            t,
            n,
            d,
            path,
            Some("velocities"),
            true,
        )?)
    } else {
        None
    };
    let clouds = clouds.into_iter().map(Option::unwrap_or_default).collect();
    Snapshots::new(times, d, clouds, velocities).map_err(|e| Error::Format {
        path: path.to_owned(),
        problem: e.to_string(),
    })
}

/// Checks a rank-1 time array of length `t`.
fn rank1_times(array: &NpyArray, t: usize, path: &Path, key: &str) -> Result<Vec<f64>> {
    if array.shape.len() != 1 {
        return Err(fail(
            path,
            Some(key),
            format!("expected rank 1 (T,), got shape {:?}", array.shape),
        ));
    }
    check_times(&array.data, t, path, Some(key), "times")?;
    Ok(array.data.clone())
}

/// Loads a snapMMD `.npz`: key `Xs` shaped `(T, N, d)` observed at the times of key `dts`
/// `(T,)` (float32 times are widened exactly, e.g. `0.8f32` becomes `0.800000011920929`).
/// Other keys (`y0`, `N_steps`, `time_scale`) are ignored.
///
/// # Errors
/// As [`load_particles_npz`], for the keys `Xs` and `dts`.
pub fn load_snapmmd_npz(path: impl AsRef<Path>) -> Result<Snapshots> {
    let path = path.as_ref();
    snapmmd_npz(&read_file(path)?, path)
}

/// [`load_snapmmd_npz`] on the bytes of an archive; errors name the file `<memory>`.
///
/// # Errors
/// As [`load_snapmmd_npz`], without the I/O errors.
pub fn parse_snapmmd_npz(bytes: &[u8]) -> Result<Snapshots> {
    snapmmd_npz(bytes, Path::new(MEMORY))
}

fn snapmmd_npz(bytes: &[u8], path: &Path) -> Result<Snapshots> {
    let mut npz = Npz::open(bytes, path)?;
    let xs = npz.array("Xs")?;
    let (t, n, d) = float_tnd(&xs, path, Some("Xs"))?;
    let dts = npz.array("dts")?;
    let times = rank1_times(&dts, t, path, "dts")?;
    let clouds = split_tnd(&xs.data, t, n, d, path, Some("Xs"), false)?;
    let clouds = clouds.into_iter().map(Option::unwrap_or_default).collect();
    Snapshots::new(times, d, clouds, None).map_err(|e| Error::Format {
        path: path.to_owned(),
        problem: e.to_string(),
    })
}

/// Writes snapshots of equal size as a particle `.npz`: `positions` `(T, N, d)`, `times` `(T,)`
/// and, if any snapshot has velocities, `velocities` `(T, N, d)` with NaN for the snapshots
/// that have none. All `float64`, uncompressed, as `numpy.savez` writes. Names are not stored.
/// The write is atomic (temporary file in the same directory, then rename).
///
/// # Errors
/// [`Error::Invalid`] if the snapshots differ in size; [`Error::Io`] if writing fails.
pub fn write_particles_npz(path: impl AsRef<Path>, snapshots: &Snapshots) -> Result<()> {
    let path = path.as_ref();
    let n = equal_size(snapshots, "a particle .npz")?;
    let shape = [snapshots.len(), n, snapshots.dim()];
    let positions: Vec<f64> = (0..snapshots.len())
        .flat_map(|k| snapshots.positions(k).iter().copied())
        .collect();
    let times = [snapshots.len()];
    let mut arrays: Vec<(&str, &[usize], &[f64])> = vec![
        ("positions", &shape, &positions),
        ("times", &times, snapshots.times()),
    ];
    let velocities = velocities_with_nan(snapshots);
    if let Some(velocities) = &velocities {
        arrays.push(("velocities", &shape, velocities));
    }
    write_npz(path, &arrays)
}

/// Writes named `float64` arrays `(key, shape, row-major values)` as an uncompressed `.npz`
/// (as `numpy.savez` writes; `numpy.load(path)[key]` reads each back), atomically.
///
/// # Errors
/// [`Error::Invalid`] naming the key whose values do not fill its shape; [`Error::Format`] or
/// [`Error::Io`] if building or writing the archive fails.
pub fn write_npz(path: impl AsRef<Path>, arrays: &[(&str, &[usize], &[f64])]) -> Result<()> {
    let path = path.as_ref();
    let zip_err = |e: ZipError| Error::Format {
        path: path.to_owned(),
        problem: format!("cannot build the zip archive: {e}"),
    };
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .large_file(true);
    for &(key, shape, values) in arrays {
        let bytes =
            encode_npy(shape, values).map_err(|e| Error::Invalid(format!("array `{key}`: {e}")))?;
        zip.start_file(format!("{key}.npy"), options)
            .map_err(zip_err)?;
        zip.write_all(&bytes)
            .map_err(|e| zip_err(ZipError::Io(e)))?;
    }
    let bytes = zip.finish().map_err(zip_err)?.into_inner();
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        for (name, bytes) in entries {
            zip.start_file(*name, SimpleFileOptions::default()).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn an_entry_that_expands_past_the_memory_limit_is_an_error_naming_the_key() {
        // 8 MB of zeros deflate to a few kilobytes.
        let positions = encode_npy(&[1_000_000, 1, 1], &vec![0.0; 1_000_000]).unwrap();
        let bytes = archive(&[("positions.npy", positions)]);
        assert!(bytes.len() < 100_000, "{} bytes", bytes.len());
        let path = Path::new("bomb.npz");
        let mut npz = Npz::open_with_limit(&bytes, path, Some(1_000_000)).unwrap();
        let msg = npz.array("positions").unwrap_err().to_string();
        assert!(
            msg.contains(
                "bomb.npz: key `positions`: the archive entry \"positions.npy\" declares 8000"
            ),
            "{msg}"
        );
        assert!(msg.contains("more than the 1000000 bytes"), "{msg}");
        let mut npz = Npz::open_with_limit(&bytes, path, Some(100_000_000)).unwrap();
        assert_eq!(npz.array("positions").unwrap().data.len(), 1_000_000);
    }

    #[test]
    fn deflated_archives_are_read() {
        let positions = encode_npy(&[2, 1, 1], &[0.5, 1.5]).unwrap();
        let s = parse_particles_npz(&archive(&[("positions.npy", positions)]), None).unwrap();
        assert_eq!(s.times(), &[0.0, 1.0]);
        assert_eq!(s.positions(1), &[1.5]);
    }

    #[test]
    fn caller_times_override_the_default() {
        let positions = encode_npy(&[2, 1, 1], &[0.5, 1.5]).unwrap();
        let bytes = archive(&[("positions.npy", positions)]);
        let s = parse_particles_npz(&bytes, Some(&[0.0, 0.25])).unwrap();
        assert_eq!(s.times(), &[0.0, 0.25]);
        let msg = parse_particles_npz(&bytes, Some(&[0.0]))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("1 values for 2 snapshots"), "{msg}");
    }

    #[test]
    fn write_npz_round_trips_named_arrays_and_names_a_bad_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npz");
        let grid = [0.5, -1.0, 2.0, 3.5, 1e-300, f64::NAN];
        write_npz(&path, &[("grid", &[2, 3], &grid), ("scalar", &[], &[7.0])]).unwrap();
        assert_eq!(npz_keys(&path).unwrap(), ["grid", "scalar"]);
        let read = load_npz_array(&path, "grid").unwrap();
        assert_eq!(read.shape, [2, 3]);
        assert_eq!(read.data[..5], grid[..5]);
        assert!(read.data[5].is_nan());
        assert_eq!(load_npz_array(&path, "scalar").unwrap().data, [7.0]);
        let err = write_npz(&path, &[("force", &[2, 2], &[1.0])]).unwrap_err();
        assert!(err.to_string().contains("array `force`"), "{err}");
    }
}
