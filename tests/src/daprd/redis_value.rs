//! How the Redis state store writes a value: jsoniter `ConfigFastest.Marshal` of the Go `any`
//! daprd decoded from the save request (dapr-contract.md §5 "Get"): floats up to 0x4ffffff with
//! at most six fractional digits, object keys in Go's random map order, no HTML escaping.
//! Apps must therefore compare state semantically and keep ids and timestamps as strings.

use super::gojson::{self, GoValue};

/// jsoniter `ConfigFastest.Marshal` of a Go `any`: lossy floats, map keys in random order.
pub(crate) fn jsoniter_fastest(v: &GoValue) -> Result<Vec<u8>, String> {
    let mut out = String::new();
    write_fastest(&mut out, v)?;
    Ok(out.into_bytes())
}

fn write_fastest(out: &mut String, v: &GoValue) -> Result<(), String> {
    match v {
        GoValue::Number(n) => out.push_str(&lossy_float(
            gojson::go_float(n).ok_or("number out of range")?,
        )),
        GoValue::String(s) => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        GoValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_fastest(out, item)?;
            }
            out.push(']');
        }
        GoValue::Map(pairs) | GoValue::Struct(pairs) => {
            let mut pairs = gojson::dedup_last(pairs);
            shuffle(&mut pairs);
            out.push('{');
            for (i, (k, v)) in pairs.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_fastest(out, &GoValue::String(k.to_string()))?;
                out.push(':');
                write_fastest(out, v)?;
            }
            out.push('}');
        }
        other => out.push_str(&String::from_utf8_lossy(&gojson::marshal(other))),
    }
    Ok(())
}

/// jsoniter `WriteFloat64Lossy`: six fractional digits, trailing zeros trimmed, exact above
/// 0x4ffffff.
fn lossy_float(f: f64) -> String {
    let (sign, val) = if f < 0.0 { ("-", -f) } else { ("", f) };
    if val > f64::from(0x4ff_ffff) {
        return format!("{sign}{}", gojson::format_go_float(val));
    }
    let lval = (val * 1e6 + 0.5) as u64;
    let (int, frac) = (lval / 1_000_000, lval % 1_000_000);
    if frac == 0 {
        return format!("{sign}{int}");
    }
    let frac = format!("{frac:06}");
    format!("{sign}{int}.{}", frac.trim_end_matches('0'))
}

/// Go map iteration order is random; so is ours, so apps cannot depend on key order.
fn shuffle<T>(v: &mut [T]) {
    let mut x = uuid::Uuid::new_v4().as_u128() as u64 | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
}
