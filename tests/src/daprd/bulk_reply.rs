//! How daprd reads the app's answer to a bulk delivery (dapr-contract.md §4, postman/http
//! `DeliverBulk`): 2xx + `{"statuses":[{"entryId","status"}]}` decoded with Go rules; a missing
//! entry or an empty/unknown status is RETRY; unknown ids are ignored; any other 2xx body (even
//! empty) retries all; 404 drops all; other statuses retry all.

use super::gojson::{self, GoValue};
use super::journal::Outcome;

/// postman/http `DeliverBulk`: one verdict per entry id in `ids`, in order.
pub(crate) fn classify(status: u16, body: &[u8], ids: &[&str]) -> Vec<Outcome> {
    let all = |o: Outcome| ids.iter().map(|_| o.clone()).collect();
    if status == 404 {
        return all(Outcome::Drop);
    }
    if !(200..=299).contains(&status) {
        return all(Outcome::Retry(format!("status code returned: {status}")));
    }
    let statuses = match decode_statuses(body) {
        Ok(s) => s,
        Err(e) => {
            return all(Outcome::Retry(format!(
                "failed unmarshalling app response for bulk subscribe: {e}"
            )));
        }
    };
    let mut out: Vec<Outcome> = all(Outcome::Retry(
        "response not received, RETRY required".into(),
    ));
    for (id, st) in statuses {
        let Some(i) = ids.iter().position(|x| *x == id) else {
            continue;
        };
        out[i] = match st.as_str() {
            "SUCCESS" => Outcome::Success,
            "DROP" => Outcome::Drop,
            "" | "RETRY" => Outcome::Retry("RETRY required".into()),
            other => Outcome::Retry(format!("unknown status returned from app: {other}")),
        };
    }
    out
}

/// `json.NewDecoder(body).Decode(&AppBulkResponse)`: `(entryId, status)` pairs in order.
fn decode_statuses(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let pairs = match gojson::decode_first(body).map_err(|e| e.to_string())? {
        GoValue::Map(p) => p,
        GoValue::Null => return Ok(Vec::new()),
        other => return Err(gojson::type_error(&other, "", "pubsub.AppBulkResponse")),
    };
    let list = match gojson::field(&pairs, "statuses") {
        None => return Ok(Vec::new()),
        Some(GoValue::Array(l)) => l,
        Some(other) => {
            return Err(gojson::type_error(
                other,
                "statuses",
                "[]pubsub.AppBulkResponseEntry",
            ));
        }
    };
    list.iter()
        .map(|item| match item {
            GoValue::Map(p) => Ok((
                gojson::string_field(p, "entryId")?,
                gojson::string_field(p, "status")?,
            )),
            GoValue::Null => Ok((String::new(), String::new())),
            other => Err(gojson::type_error(
                other,
                "statuses",
                "pubsub.AppBulkResponseEntry",
            )),
        })
        .collect()
}
