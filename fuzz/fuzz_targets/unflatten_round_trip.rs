//! unflatten_json on arbitrary flat objects, then flatten_json of the result.
//!
//! Keys are paths of segments (some numeric, some empty, some containing parts
//! of the separator) joined by the separator. Checks: unflatten_json fails
//! exactly when a key's path is a proper prefix of another's ("conflicting
//! keys") or has more than MAX_DEPTH segments ("nested too deeply"); otherwise
//! it returns an object or array, and when every value is a scalar, {} or []
//! flattening that result with the same separator gives the input back.
#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use tool_registry::builtins::data::flatten::MAX_DEPTH;
use tool_registry_fuzz::{
    flatten_json, is_flat_leaf, json_value, key, run, scalar, separator, sometimes, unflatten_json,
};

fn call(
    tool: &dyn tool_registry::builtins::BuiltinTool,
    data: &Value,
    sep: Option<&str>,
) -> std::result::Result<Value, String> {
    let mut args = json!({ "data": data });
    if let Some(sep) = sep {
        args["separator"] = json!(sep);
    }
    run(tool, &args, "result").map_err(|err| err.message)
}

fn segment(u: &mut Unstructured) -> Result<String> {
    Ok(match u.int_in_range(0..=3)? {
        0 => u.int_in_range(0u8..=3)?.to_string(),
        1 => (*u.choose(&["", "00", "01", "-1", "a", "b"])?).to_string(),
        _ => key(u)?,
    })
}

fn flat_value(u: &mut Unstructured) -> Result<Value> {
    Ok(match u.int_in_range(0..=9)? {
        0 => json!({}),
        1 => json!([]),
        2 => json_value(u, 2, 2)?, // may be a non-empty container
        _ => scalar(u)?,
    })
}

fn check(u: &mut Unstructured) -> Result<()> {
    let sep = if u.ratio(1, 8)? {
        None
    } else {
        Some(separator(u)?)
    };
    let s = sep.as_deref().unwrap_or(".");
    let mut flat = Map::new();
    for _ in 0..u.int_in_range(0..=8)? {
        let count = if sometimes(u, 32)? {
            u.int_in_range(MAX_DEPTH - 1..=MAX_DEPTH + 1)?
        } else {
            u.int_in_range(1..=4)?
        };
        let mut segments = Vec::with_capacity(count);
        for _ in 0..count {
            segments.push(segment(u)?);
        }
        flat.insert(segments.join(s), flat_value(u)?);
    }

    let got = call(
        &unflatten_json(),
        &Value::Object(flat.clone()),
        sep.as_deref(),
    );

    let paths: Vec<Vec<&str>> = flat.keys().map(|k| k.split(s).collect()).collect();
    let too_deep = paths.iter().any(|p| p.len() > MAX_DEPTH);
    let conflict = paths
        .iter()
        .any(|p| paths.iter().any(|q| q.len() > p.len() && q.starts_with(p)));
    let input = Value::Object(flat.clone());
    match got {
        Err(message) => {
            let explained = (too_deep && message.contains("nested too deeply"))
                || (conflict && message.contains("conflicting keys"));
            assert!(
                explained,
                "unflatten {input} with {s:?}: unexpected error {message:?}"
            );
        }
        Ok(back) => {
            assert!(
                !too_deep && !conflict,
                "unflatten {input} with {s:?} should have failed, gave {back}"
            );
            assert!(back.is_object() || back.is_array(), "unflatten gave {back}");
            if flat.values().all(is_flat_leaf) {
                let again = call(&flatten_json(), &back, sep.as_deref())
                    .unwrap_or_else(|err| panic!("flatten {back} with {s:?} failed: {err}"));
                assert_eq!(again, input, "unflatten then flatten with {s:?} via {back}");
            }
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = check(&mut Unstructured::new(data));
});
