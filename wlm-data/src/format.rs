//! Which loader reads a data file: the format guessed from the extension (and, for `.npz`, the
//! keys inside), and [`load_any`], which loads any supported file with default options.

use std::path::Path;

use crate::{Error, H5adConfig, Result, Snapshots, TrajectoryNetConfig};

/// The data file formats the loaders read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// Particle `.npz` (`positions`, optional `velocities` and `times`):
    /// [`load_particles_npz`](crate::load_particles_npz).
    Particles,
    /// snapMMD `.npz` (`Xs` at times `dts`): [`load_snapmmd_npz`](crate::load_snapmmd_npz).
    SnapMmd,
    /// TrajectoryNet `.npz` (`pcs`, `sample_labels`):
    /// [`load_trajectorynet_npz`](crate::load_trajectorynet_npz).
    TrajectoryNet,
    /// `.npy` positions `(T, N, d)`: [`load_npy`](crate::load_npy).
    Npy,
    /// Long-format CSV (`time, x0, …`): [`load_csv`](crate::load_csv).
    Csv,
    /// AnnData `.h5ad`: [`load_h5ad`](crate::load_h5ad).
    H5ad,
}

impl Format {
    /// Every format, in the order of [`Format::name`]'s list.
    pub const ALL: [Format; 6] = [
        Self::Particles,
        Self::SnapMmd,
        Self::TrajectoryNet,
        Self::Npy,
        Self::Csv,
        Self::H5ad,
    ];

    /// The format's name on a command line (`--format`): `particles`, `snap-mmd`,
    /// `trajectory-net`, `npy`, `csv` or `h5ad`; [`str::parse`] reads it back.
    pub fn name(self) -> &'static str {
        match self {
            Self::Particles => "particles",
            Self::SnapMmd => "snap-mmd",
            Self::TrajectoryNet => "trajectory-net",
            Self::Npy => "npy",
            Self::Csv => "csv",
            Self::H5ad => "h5ad",
        }
    }

    /// A short description, for messages and `wlm inspect`.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Particles => "particle .npz (positions, velocities)",
            Self::SnapMmd => "snapMMD .npz (Xs at times dts)",
            Self::TrajectoryNet => "TrajectoryNet .npz (pcs, sample_labels, pcs_delta)",
            Self::Npy => ".npy positions (T, N, d)",
            Self::Csv => "long-format CSV (time, x0, ...)",
            Self::H5ad => "AnnData .h5ad",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    /// Reads a [`Format::name`] (ASCII case ignored).
    ///
    /// # Errors
    /// An unknown name, listing the names.
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|f| f.name()).collect();
                format!(
                    "unknown format `{text}`: expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// Guesses the format of a data file from its extension (case-insensitive) and, for `.npz`,
/// from the keys of its arrays (`positions`, `Xs` or `pcs`).
///
/// # Errors
/// [`Error::Format`] naming the file for an unknown extension or an `.npz` with none of the
/// known keys (listing the keys found); the `.npz` reader's errors.
pub fn detect_format(path: impl AsRef<Path>) -> Result<Format> {
    let path = path.as_ref();
    let fail = |problem: String| Error::Format {
        path: path.to_owned(),
        problem,
    };
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "npy" => Ok(Format::Npy),
        "csv" => Ok(Format::Csv),
        "h5ad" => Ok(Format::H5ad),
        "npz" => {
            let keys = crate::npz_keys(path)?;
            let has = |k: &str| keys.iter().any(|x| x == k);
            if has("positions") {
                Ok(Format::Particles)
            } else if has("Xs") {
                Ok(Format::SnapMmd)
            } else if has("pcs") {
                Ok(Format::TrajectoryNet)
            } else {
                Err(fail(format!(
                    "unrecognised .npz: expected a key `positions`, `Xs` or `pcs`, found {}",
                    if keys.is_empty() {
                        "no arrays".to_string()
                    } else {
                        format!("{keys:?}")
                    }
                )))
            }
        }
        _ => Err(fail(
            "unknown data format: expected .npz, .npy, .csv or .h5ad".into(),
        )),
    }
}

/// Loads any supported data file with default options ([`detect_format`], then its loader).
///
/// # Errors
/// As [`detect_format`] and the loaders, each naming the file.
pub fn load_any(path: impl AsRef<Path>) -> Result<(Format, Snapshots)> {
    let path = path.as_ref();
    let format = detect_format(path)?;
    let snapshots = match format {
        Format::Particles => crate::load_particles_npz(path, None)?,
        Format::SnapMmd => crate::load_snapmmd_npz(path)?,
        Format::TrajectoryNet => {
            crate::load_trajectorynet_npz(path, &TrajectoryNetConfig::default())?
        }
        Format::Npy => crate::load_npy(path, None)?,
        Format::Csv => crate::load_csv(path)?,
        Format::H5ad => crate::load_h5ad(path, &H5adConfig::default())?,
    };
    Ok((format, snapshots))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_read_back_and_unknown_names_list_them() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>(), Ok(f));
            assert_eq!(f.name().to_uppercase().parse::<Format>(), Ok(f));
        }
        let names: std::collections::BTreeSet<&str> =
            Format::ALL.iter().map(|f| f.name()).collect();
        assert_eq!(names.len(), Format::ALL.len());
        let err = "hdf5".parse::<Format>().unwrap_err();
        assert!(
            err.contains("`hdf5`") && err.contains("snap-mmd, trajectory-net"),
            "{err}"
        );
    }

    fn two_snapshots() -> Snapshots {
        Snapshots::new(
            vec![0.0, 1.0],
            2,
            vec![vec![0.0, 1.0, 2.0, 3.0], vec![1.0, 1.0, 2.0, 2.0]],
            None,
        )
        .unwrap()
    }

    #[test]
    fn every_written_format_is_detected_and_loads_back_the_same_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let s = two_snapshots();
        let cases: [(&str, Format); 3] = [
            ("a.NPZ", Format::Particles),
            ("b.npy", Format::Npy),
            ("c.csv", Format::Csv),
        ];
        for (name, want) in cases {
            let path = dir.path().join(name);
            match want {
                Format::Particles => crate::write_particles_npz(&path, &s).unwrap(),
                Format::Npy => crate::write_npy(&path, &s).unwrap(),
                _ => crate::write_csv(&path, &s).unwrap(),
            }
            let (format, loaded) = load_any(&path).unwrap();
            assert_eq!(format, want, "{name}");
            assert_eq!(loaded.times(), s.times(), "{name}");
            for k in 0..s.len() {
                assert_eq!(loaded.positions(k), s.positions(k), "{name} snapshot {k}");
            }
        }
    }

    #[test]
    fn unknown_extensions_and_foreign_npz_archives_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.parquet");
        std::fs::write(&path, b"x").unwrap();
        let msg = detect_format(&path).unwrap_err().to_string();
        assert!(
            msg.contains("data.parquet") && msg.contains("unknown data format"),
            "{msg}"
        );

        let path = dir.path().join("other.npz");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        zip.start_file("weights.npy", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut zip, &crate::encode_npy(&[1], &[0.0]).unwrap()).unwrap();
        zip.finish().unwrap();
        let msg = load_any(&path).unwrap_err().to_string();
        assert!(
            msg.contains("other.npz") && msg.contains("found [\"weights\"]"),
            "{msg}"
        );
    }
}
