//! The OpenAPI document's schemas say what the dashboard really sends: every documented
//! component schema of a wire document lists exactly the fields the `ds_wire` type writes, at
//! every level of nesting (renamed, added or dropped fields fail here). The samples are
//! ds-wire's golden documents, which its own tests hold byte for byte against the types, so
//! the document, the types and the JSON on the wire are one.

use std::collections::BTreeSet;

use desktop_streamer_web::openapi;
use ds_wire::alerts::{AlertHistory, AlertsReply};
use ds_wire::cameras::CameraList;
use ds_wire::health::StreamerStatus;
use ds_wire::status::DashboardStatus;
use serde_json::Value;

const STATUS: &str = include_str!("../../common/wire/tests/golden/dashboard-status.json");
const STREAMER_STATUS: &str = include_str!("../../common/wire/tests/golden/streamer-status.json");
const CAMERAS: &str = include_str!("../../common/wire/tests/golden/cameras.json");
const ALERTS: &str = include_str!("../../common/wire/tests/golden/alert-history.json");

/// A sample as the type writes it (parsed into the type and written again).
fn written<T: serde::de::DeserializeOwned + serde::Serialize>(golden: &str) -> Value {
    serde_json::to_value(serde_json::from_str::<T>(golden).expect("the golden document reads")).unwrap()
}

fn doc() -> Value {
    serde_json::from_str(openapi::DOCUMENT).unwrap()
}

/// The schema with `$ref`, `allOf` and a nullable `oneOf` resolved into one object schema's
/// properties (`None` for a schema that names no properties, such as a free-form object).
fn properties(doc: &Value, schema: &Value) -> Option<serde_json::Map<String, Value>> {
    if let Some(r) = schema["$ref"].as_str() {
        return properties(doc, doc.pointer(r.trim_start_matches('#')).expect("the reference resolves"));
    }
    if let Some(all) = schema["allOf"].as_array() {
        let mut merged = serde_json::Map::new();
        for part in all {
            merged.extend(properties(doc, part)?);
        }
        return Some(merged);
    }
    if let Some(one) = schema["oneOf"].as_array() {
        return one.iter().find_map(|s| properties(doc, s));
    }
    schema["properties"].as_object().cloned()
}

/// Every place where the schema's properties and the samples' keys differ, as paths.
fn compare(doc: &Value, path: &str, schema: &Value, samples: &[&Value], out: &mut Vec<String>) {
    let objects: Vec<&serde_json::Map<String, Value>> = samples.iter().filter_map(|s| s.as_object()).collect();
    if objects.is_empty() {
        let items: Vec<&Value> = samples.iter().filter_map(|s| s.as_array()).flatten().collect();
        if !items.is_empty() {
            let item_schema = resolve_items(doc, schema);
            if let Some(item_schema) = item_schema {
                compare(doc, &format!("{path}[]"), &item_schema, &items, out);
            }
        }
        return;
    }
    let Some(props) = properties(doc, schema) else { return };
    let documented: BTreeSet<&str> = props.keys().map(String::as_str).collect();
    let sent: BTreeSet<&str> = objects.iter().flat_map(|o| o.keys().map(String::as_str)).collect();
    for missing in sent.difference(&documented) {
        out.push(format!("{path}.{missing}: sent but not documented"));
    }
    for gone in documented.difference(&sent) {
        out.push(format!("{path}.{gone}: documented but never sent"));
    }
    for (name, sub) in &props {
        let values: Vec<&Value> = objects.iter().filter_map(|o| o.get(name)).collect();
        compare(doc, &format!("{path}.{name}"), sub, &values, out);
    }
}

fn resolve_items(doc: &Value, schema: &Value) -> Option<Value> {
    if let Some(r) = schema["$ref"].as_str() {
        return resolve_items(doc, doc.pointer(r.trim_start_matches('#'))?);
    }
    if let Some(one) = schema["oneOf"].as_array() {
        return one.iter().find_map(|s| resolve_items(doc, s));
    }
    schema.get("items").cloned()
}

fn check(component: &str, samples: &[&Value]) -> Vec<String> {
    let doc = doc();
    let schema = doc["components"]["schemas"][component].clone();
    assert!(schema.is_object(), "components.schemas.{component} is documented");
    let mut out = Vec::new();
    compare(&doc, component, &schema, samples, &mut out);
    out
}

#[test]
fn the_status_schemas_are_the_status_type() {
    let status = written::<DashboardStatus>(STATUS);
    // Without systemd the streamer's own view of its unit stands in, with `managed_by_systemd`.
    let mut without_systemd: DashboardStatus = serde_json::from_str(STATUS).unwrap();
    without_systemd.service = Some(serde_json::from_str::<StreamerStatus>(STREAMER_STATUS).unwrap().service);
    // Nor can systemd-timedated be asked: the clock's state is unknown, and why is said.
    without_systemd.clock = Some(ds_wire::system::ClockSync::unknown("no system bus"));
    let without_systemd = serde_json::to_value(without_systemd).unwrap();
    let mut wrong = check("Status", &[&status, &without_systemd]);
    wrong.extend(check("Health", &[&status["health"]]));
    wrong.extend(check("UnitState", &[&status["services"][0]]));
    assert!(wrong.is_empty(), "web-monitor/openapi.json differs from ds_wire::status:\n{}", wrong.join("\n"));
}

#[test]
fn the_camera_schemas_are_the_camera_types() {
    let list = written::<CameraList>(CAMERAS);
    let mut wrong = check("CameraList", &[&list]);
    let cameras: Vec<&Value> = list["cameras"].as_array().unwrap().iter().collect();
    wrong.extend(check("Camera", &cameras));
    assert!(wrong.is_empty(), "web-monitor/openapi.json differs from ds_wire::cameras:\n{}", wrong.join("\n"));
}

#[test]
fn the_alert_schema_is_the_alert_history_type() {
    let history: AlertHistory = serde_json::from_str(ALERTS).unwrap();
    let reply = serde_json::to_value(AlertsReply { entries: history.entries }).unwrap();
    let entries: Vec<&Value> = reply["entries"].as_array().unwrap().iter().collect();
    let wrong = check("AlertEntry", &entries);
    assert!(wrong.is_empty(), "web-monitor/openapi.json differs from ds_wire::alerts:\n{}", wrong.join("\n"));
}
