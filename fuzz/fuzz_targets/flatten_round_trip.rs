//! flatten_json, then unflatten_json, on arbitrary JSON with arbitrary separators.
//!
//! Checks: flatten_json gives exactly the documented flat object (keys are the
//! leaf paths joined with the separator, array elements keyed by index, {} and
//! [] kept as leaves), or fails when the data is not an object or array, when
//! two leaves make the same key, or when it is nested too deeply. Unflattening
//! its output never panics, and gives the original document back, and that
//! flattens to the same flat object again, whenever the documented caveats do
//! not apply: no joined key splits differently from its path (a key containing
//! the separator is ambiguous), no object has exactly the keys "0".."n-1"
//! (those come back as arrays), and the data is not a top-level empty array
//! (that comes back as {}).
#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use tool_registry::builtins::data::flatten::MAX_DEPTH;
use tool_registry_fuzz::{
    flatten_json, has_index_keyed_object, is_flat_leaf, json_value, key, leaf_paths, run,
    separator, sometimes, unflatten_json,
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

fn document(u: &mut Unstructured) -> Result<Value> {
    let mut doc = if sometimes(u, 20)? {
        json_value(u, 0, 0)? // a scalar: must be refused
    } else {
        let len = u.int_in_range(0..=4)?;
        let mut items = Vec::new();
        for _ in 0..len {
            items.push(json_value(u, 4, 3)?);
        }
        if u.arbitrary()? {
            Value::Array(items)
        } else {
            let mut map = Map::new();
            for item in items {
                map.insert(key(u)?, item);
            }
            Value::Object(map)
        }
    };
    // Sometimes bury it deep, around the nesting limit.
    if sometimes(u, 16)? {
        let levels = u.int_in_range(MAX_DEPTH - 4..=MAX_DEPTH + 2)?;
        for _ in 0..levels {
            doc = if u.arbitrary()? {
                json!([doc])
            } else {
                let mut map = Map::new();
                map.insert(key(u)?, doc);
                Value::Object(map)
            };
        }
    }
    Ok(doc)
}

fn check(u: &mut Unstructured) -> Result<()> {
    let sep = if u.ratio(1, 8)? {
        None
    } else {
        Some(separator(u)?)
    };
    let doc = document(u)?;
    let s = sep.as_deref().unwrap_or(".");

    let got = call(&flatten_json(), &doc, sep.as_deref());

    // The documented flattening.
    let leaves = leaf_paths(&doc);
    let too_deep = leaves.iter().any(|(path, _)| path.len() > MAX_DEPTH);
    let mut expected = Map::new();
    let mut collision = false;
    for (path, leaf) in &leaves {
        collision |= expected.insert(path.join(s), leaf.clone()).is_some();
    }
    let flat = match got {
        Err(message) => {
            let explained = if !doc.is_object() && !doc.is_array() {
                message.contains("must be a JSON object or array")
            } else {
                (too_deep && message.contains("nested too deeply"))
                    || (collision && message.contains("key collision"))
            };
            assert!(
                explained,
                "flatten {doc} with {s:?}: unexpected error {message:?}"
            );
            return Ok(());
        }
        Ok(flat) => flat,
    };
    assert!(
        (doc.is_object() || doc.is_array()) && !too_deep && !collision,
        "flatten {doc} with {s:?} should have failed, gave {flat}"
    );
    assert_eq!(flat, Value::Object(expected), "flatten {doc} with {s:?}");
    let flat_map = flat.as_object().expect("checked");
    assert!(flat_map.values().all(is_flat_leaf), "{flat} is not flat");

    let back = call(&unflatten_json(), &flat, sep.as_deref());

    let unambiguous = leaves.iter().all(|(path, _)| {
        let joined = path.join(s);
        joined.split(s).eq(path.iter().map(String::as_str))
    });
    let top_level_empty_array = doc.as_array().is_some_and(Vec::is_empty);
    if unambiguous && !has_index_keyed_object(&doc) && !top_level_empty_array {
        let back = back.unwrap_or_else(|err| panic!("unflatten {flat} with {s:?} failed: {err}"));
        assert_eq!(back, doc, "round trip with {s:?} via {flat}");
        let again = call(&flatten_json(), &back, sep.as_deref())
            .unwrap_or_else(|err| panic!("flatten again {back} failed: {err}"));
        assert_eq!(
            again, flat,
            "flattening the round-tripped {back} with {s:?}"
        );
    } else if let Ok(back) = back {
        // Ambiguous input: any answer, but a JSON document.
        assert!(back.is_object() || back.is_array(), "unflatten gave {back}");
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = check(&mut Unstructured::new(data));
});
