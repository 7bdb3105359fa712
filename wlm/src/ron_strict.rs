//! The strict RON reader of every configuration: unknown fields at any depth are errors, and
//! an error names the field's dotted path and its position. `wlm-cli` (config files, `--set`)
//! and `wlm-py` (config dicts and files) read configs through it.

use serde::de::DeserializeOwned;

/// Deserialises RON text, rejecting unknown fields at any depth.
///
/// # Errors
/// A message: syntax errors (`line:col: …`), unknown fields (``unknown field `train.stepz` ``),
/// wrong types and values (``field `train.lr` (line:col): …``).
pub fn from_ron_strict<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let mut de = ron::Deserializer::from_str(text).map_err(|e| e.to_string())?;
    let mut unknown: Vec<String> = Vec::new();
    let result = {
        let mut record = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
        let ignoring = serde_ignored::Deserializer::new(&mut de, &mut record);
        serde_path_to_error::deserialize(ignoring)
    };
    match result {
        Ok(value) => {
            de.end().map_err(|e| {
                let spanned = de.span_error(e);
                format!("{}: {}", spanned.span.start, spanned.code)
            })?;
            match unknown.first() {
                Some(path) => Err(format!("unknown field `{path}`")),
                None => Ok(value),
            }
        }
        Err(err) => {
            let path = err.path().to_string();
            let spanned = de.span_error(err.into_inner());
            let at = spanned.span.start;
            if path.is_empty() || path == "." {
                Err(format!("{at}: {}", spanned.code))
            } else {
                Err(format!("field `{path}` ({at}): {}", spanned.code))
            }
        }
    }
}
