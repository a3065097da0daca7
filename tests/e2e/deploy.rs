//! The deployment files (deploy/) against the code they deploy.
//!
//! What can be checked without Dapr, Kubernetes or Docker: every YAML document parses and has
//! the fields its kind requires; component names, ports, routes and environment variables are
//! the ones the host declares (its clap definitions) and the plugin subscribes with (its
//! manifest); the Resiliency policy is loaded by every install path and fits the host's
//! timings; the tokens daprd gets are the ones the app gets; every path and command of the
//! Dockerfile exists in the repository. Two checks run real processes: the plugin-sync script
//! of the Kubernetes pod, and the host started with the pod's environment.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clap::Args as _;
use serde::Deserialize as _;
use serde_json::Value;
use sha2::Digest as _;
use task_events_host::config::ServeArgs;
use task_events_tests::host::{HostProcess, free_port};
use task_events_tests::plugins::{HOSTILE_WASM, task_plugin_bytes, task_plugin_variant};

const HOST_EXE: &str = env!("CARGO_BIN_EXE_host-under-test");

// ---------------------------------------------------------------------------------------------
// Reading the files

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace root")
        .to_path_buf()
}

fn deploy(rel: &str) -> PathBuf {
    root().join("deploy").join(rel)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every document of a YAML file (empty documents left out), as JSON values.
fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = read(path);
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| {
            Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
        })
        .filter(|doc| !doc.is_null())
        .collect()
}

/// The one document of a YAML file.
fn yaml_doc(path: &Path) -> Value {
    let mut docs = yaml_docs(path);
    assert_eq!(docs.len(), 1, "{} should hold one document", path.display());
    docs.remove(0)
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("reading deploy/") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

fn all_yaml_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    yaml_files(&root().join("deploy"), &mut files);
    files.sort();
    files
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {value}"))
}

fn kind(doc: &Value) -> &str {
    doc.get("kind").and_then(Value::as_str).unwrap_or_default()
}

fn name(doc: &Value) -> &str {
    str_at(doc, "/metadata/name")
}

/// A Go duration as Dapr writes them ("75m", "4s", "1h30m", "500ms").
fn go_duration(text: &str) -> Duration {
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or_else(|| panic!("{text:?}: a number without a unit"));
        let number: f64 = rest[..digits]
            .parse()
            .unwrap_or_else(|_| panic!("{text:?} is not a Go duration"));
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            other => panic!("{text:?}: unknown unit {other:?}"),
        };
        total += Duration::from_secs_f64(number * seconds);
        rest = &rest[unit_len..];
    }
    total
}

// ---------------------------------------------------------------------------------------------
// What the code declares

/// One `serve` argument as the host declares it.
struct Flag {
    id: String,
    long: Option<String>,
    env: Option<String>,
    default: Option<String>,
}

fn serve_flags() -> Vec<Flag> {
    let command = ServeArgs::augment_args(clap::Command::new("serve"));
    command
        .get_arguments()
        .map(|arg| Flag {
            id: arg.get_id().to_string(),
            long: arg.get_long().map(str::to_string),
            env: arg.get_env().map(|e| e.to_string_lossy().into_owned()),
            default: arg
                .get_default_values()
                .first()
                .map(|d| d.to_string_lossy().into_owned()),
        })
        .collect()
}

fn flag(id: &str) -> Flag {
    serve_flags()
        .into_iter()
        .find(|f| f.id == id)
        .unwrap_or_else(|| panic!("the host has no `serve` argument {id:?}"))
}

fn default_of(id: &str) -> String {
    flag(id)
        .default
        .unwrap_or_else(|| panic!("`serve --{id}` has no default"))
}

fn default_number(id: &str) -> u64 {
    default_of(id)
        .parse()
        .unwrap_or_else(|_| panic!("the default of {id} is not a number"))
}

/// Environment variables `serve` reads.
fn serve_envs() -> BTreeSet<String> {
    serve_flags().into_iter().filter_map(|f| f.env).collect()
}

/// Long flags `serve` takes.
fn serve_longs() -> BTreeSet<String> {
    serve_flags().into_iter().filter_map(|f| f.long).collect()
}

/// `--flag` and `--flag=value` arguments must be flags of `serve`.
fn assert_serve_args(args: &[&str], whose: &str) {
    assert_eq!(args.first(), Some(&"serve"), "{whose} must run `serve`");
    let longs = serve_longs();
    for arg in &args[1..] {
        if let Some(flag) = arg.strip_prefix("--") {
            let flag = flag.split('=').next().unwrap_or_default();
            assert!(
                longs.contains(flag),
                "{whose}: `serve` has no flag --{flag}"
            );
        }
    }
}

fn toml_file(rel: &str) -> toml::Table {
    read(&root().join(rel))
        .parse()
        .unwrap_or_else(|e| panic!("{rel} is not valid TOML: {e}"))
}

/// Package names of the workspace members.
fn workspace_packages() -> BTreeSet<String> {
    let workspace = toml_file("Cargo.toml");
    let members = workspace["workspace"]["members"]
        .as_array()
        .expect("workspace.members");
    members
        .iter()
        .map(|m| {
            let manifest = toml_file(&format!("{}/Cargo.toml", m.as_str().expect("a path")));
            manifest["package"]["name"]
                .as_str()
                .expect("package.name")
                .to_string()
        })
        .collect()
}

/// The name of the host's executable ([[bin]] in host/Cargo.toml).
fn host_bin() -> String {
    let manifest = toml_file("host/Cargo.toml");
    manifest["bin"][0]["name"]
        .as_str()
        .expect("host/Cargo.toml has a [[bin]] name")
        .to_string()
}

/// Where the host's build script leaves the task plugin, relative to the repository root:
/// guest-build's layout (read off the fixture plugin this package built the same way), with the
/// guest package's library name.
fn task_plugin_build_output() -> String {
    let hostile = Path::new(HOSTILE_WASM);
    let dir = hostile
        .parent()
        .and_then(|d| d.strip_prefix(root()).ok())
        .expect("guest builds land under the repository root");
    let guest = toml_file("guest/Cargo.toml");
    let package = guest["package"]["name"].as_str().expect("package.name");
    format!("{}/{}.wasm", dir.display(), package.replace('-', "_"))
}

fn manifest() -> task_plugin::model::Manifest {
    task_plugin::manifest::manifest()
}

// ---------------------------------------------------------------------------------------------
// The install paths

/// Documents of the local components folder (`dapr run --resources-path deploy/components`).
fn local_resources() -> Vec<(PathBuf, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy("components"))
        .expect("deploy/components")
        .map(|e| e.expect("an entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .flat_map(|f| yaml_docs(&f).into_iter().map(move |d| (f.clone(), d)))
        .collect()
}

fn kustomization() -> Value {
    yaml_doc(&deploy("kustomization.yaml"))
}

/// Documents of every resource deploy/kustomization.yaml lists.
fn kubernetes_resources() -> Vec<(PathBuf, Value)> {
    let kustomization = kustomization();
    let resources = kustomization["resources"]
        .as_array()
        .expect("kustomization resources");
    resources
        .iter()
        .flat_map(|r| {
            let path = deploy(r.as_str().expect("a resource path"));
            assert!(
                path.is_file(),
                "kustomization lists {}, which is missing",
                path.display()
            );
            yaml_docs(&path).into_iter().map(move |d| (path.clone(), d))
        })
        .collect()
}

fn of_kind<'a>(docs: &'a [(PathBuf, Value)], wanted: &str) -> Vec<&'a (PathBuf, Value)> {
    docs.iter().filter(|(_, d)| kind(d) == wanted).collect()
}

fn the_one<'a>(docs: &'a [(PathBuf, Value)], wanted: &str, whose: &str) -> &'a (PathBuf, Value) {
    let found = of_kind(docs, wanted);
    assert_eq!(found.len(), 1, "{whose} should have one {wanted}");
    found[0]
}

fn deployment() -> Value {
    the_one(&kubernetes_resources(), "Deployment", "Kubernetes")
        .1
        .clone()
}

fn app_container(deployment: &Value) -> Value {
    let containers = deployment
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .expect("containers");
    assert_eq!(
        containers.len(),
        1,
        "one app container (the injector adds daprd)"
    );
    containers[0].clone()
}

fn annotation<'a>(deployment: &'a Value, key: &str) -> &'a str {
    deployment
        .pointer("/spec/template/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("the pod template has no annotation {key}"))
}

/// A container's literal `env` values.
fn env_value<'a>(container: &'a Value, var: &str) -> Option<&'a str> {
    env_entry(container, var).and_then(|e| e.get("value").and_then(Value::as_str))
}

fn env_entry<'a>(container: &'a Value, var: &str) -> Option<&'a Value> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == var)
}

fn mount_path<'a>(container: &'a Value, volume: &str) -> Option<&'a Value> {
    container["volumeMounts"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == volume)
}

/// The volume mounted at the longest mount path that holds `path`, and whether it is read-only.
fn volume_holding(container: &Value, path: &str) -> Option<(String, bool)> {
    container["volumeMounts"]
        .as_array()?
        .iter()
        .filter(|m| {
            let mount = m["mountPath"].as_str().unwrap_or("/nowhere");
            Path::new(path).starts_with(mount)
        })
        .max_by_key(|m| m["mountPath"].as_str().map(str::len))
        .map(|m| {
            (
                m["name"].as_str().unwrap_or_default().to_string(),
                m["readOnly"].as_bool().unwrap_or(false),
            )
        })
}

fn component_metadata<'a>(component: &'a Value, key: &str) -> Option<&'a Value> {
    component
        .pointer("/spec/metadata")?
        .as_array()?
        .iter()
        .find(|m| m["name"] == key)
}

fn metadata_value<'a>(component: &'a Value, key: &str) -> Option<&'a str> {
    component_metadata(component, key)?.get("value")?.as_str()
}

fn scopes(doc: &Value) -> Vec<&str> {
    doc["scopes"]
        .as_array()
        .map(|s| s.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The multi-app run file and its one app.
fn run_file() -> (Value, Value) {
    let file = yaml_doc(&deploy("dapr.yaml"));
    let apps = file["apps"].as_array().expect("apps");
    assert_eq!(apps.len(), 1, "deploy/dapr.yaml runs the host");
    let app = apps[0].clone();
    (file, app)
}

/// The directories `dapr run -f deploy/dapr.yaml` loads resources from, as the CLI resolves
/// them: the app's `resourcesPaths` relative to its `appDirPath`, else `<appDirPath>/.dapr/
/// resources` if it exists, else `common.resourcesPaths` relative to the file.
fn run_file_resource_dirs() -> Vec<PathBuf> {
    let (file, app) = run_file();
    let paths = |v: &Value| -> Vec<String> {
        match v {
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            Value::String(s) => s.split(',').map(|p| p.trim().to_string()).collect(),
            _ => Vec::new(),
        }
    };
    let app_dir = deploy("").join(str_at(&app, "/appDirPath"));
    let own = paths(&app["resourcesPaths"]);
    let conventional = app_dir.join(".dapr").join("resources");
    let dirs: Vec<PathBuf> = if !own.is_empty() {
        own.iter().map(|p| app_dir.join(p)).collect()
    } else if conventional.is_dir() {
        vec![conventional]
    } else {
        paths(&file["common"]["resourcesPaths"])
            .iter()
            .map(|p| deploy("").join(p))
            .collect()
    };
    dirs.iter()
        .map(|d| {
            d.canonicalize()
                .unwrap_or_else(|e| panic!("resources path {}: {e}", d.display()))
        })
        .collect()
}

/// The Resiliency every install path loads (deploy/components).
fn resiliency() -> (PathBuf, Value) {
    the_one(&local_resources(), "Resiliency", "deploy/components").clone()
}

// ---------------------------------------------------------------------------------------------
// Tests: shapes

#[test]
fn every_yaml_document_parses_and_has_what_its_kind_requires() {
    let files = all_yaml_files();
    assert!(files.len() >= 12, "deploy/ holds the files: {files:?}");
    for file in &files {
        let docs = yaml_docs(file);
        assert!(!docs.is_empty(), "{} is empty", file.display());
        for doc in &docs {
            let what = format!("{} ({})", file.display(), kind(doc));
            if file.ends_with("deploy/dapr.yaml") {
                assert_eq!(doc["version"], 1, "{what}: run file version");
                continue;
            }
            assert!(
                doc["apiVersion"].as_str().is_some_and(|v| !v.is_empty()),
                "{what}: apiVersion"
            );
            assert!(!kind(doc).is_empty(), "{what}: kind");
            if kind(doc) == "Kustomization" {
                continue;
            }
            assert!(!name(doc).is_empty(), "{what}: metadata.name");
            if kind(doc) == "Component" {
                assert_component_shape(doc, &what);
            }
        }
    }
}

fn assert_component_shape(doc: &Value, what: &str) {
    assert_eq!(doc["apiVersion"], "dapr.io/v1alpha1", "{what}");
    let type_ = str_at(doc, "/spec/type");
    assert!(
        type_.starts_with("pubsub.") || type_.starts_with("state."),
        "{what}: type {type_}"
    );
    assert!(
        matches!(str_at(doc, "/spec/version"), "v1" | "v2"),
        "{what}: version"
    );
    let metadata = doc
        .pointer("/spec/metadata")
        .and_then(Value::as_array)
        .expect("spec.metadata");
    let mut names = BTreeSet::new();
    for item in metadata {
        let key = item["name"].as_str().expect("metadata name");
        assert!(names.insert(key), "{what}: {key} twice");
        let value = item.get("value");
        let secret = item.get("secretKeyRef");
        assert!(
            value.is_some() != secret.is_some(),
            "{what}: {key} needs a value or a secretKeyRef, not both"
        );
        if let Some(secret) = secret {
            assert!(
                secret["name"].as_str().is_some() && secret["key"].as_str().is_some(),
                "{what}: {key}: secretKeyRef needs name and key"
            );
        }
        if let Some(value) = value {
            assert!(
                value.is_string(),
                "{what}: {key}: Dapr metadata values are strings; quote {value}"
            );
            // No credential is ever written into a file here.
            let lower = key.to_ascii_lowercase();
            if ["password", "secret", "connectionstring", "cacert", "token"]
                .iter()
                .any(|s| lower.contains(s))
            {
                assert_eq!(value, "", "{what}: {key} must come from a secretKeyRef");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests: names and routes

/// The components of one install path carry the host's default names and the plugin's pubsub.
fn assert_components(docs: &[(PathBuf, Value)], whose: &str, app_id: &str) {
    let pubsub_name = default_of("pubsub");
    let store_name = default_of("state_store");
    for sub in &manifest().subscriptions {
        assert_eq!(
            sub.pubsub, pubsub_name,
            "the plugin subscribes on {}, the host's --pubsub default is {pubsub_name}",
            sub.pubsub
        );
    }
    let components = of_kind(docs, "Component");
    let pubsubs: Vec<_> = components
        .iter()
        .filter(|(_, c)| str_at(c, "/spec/type").starts_with("pubsub."))
        .collect();
    let stores: Vec<_> = components
        .iter()
        .filter(|(_, c)| str_at(c, "/spec/type").starts_with("state."))
        .collect();
    assert_eq!(pubsubs.len(), 1, "{whose}: one pub/sub component");
    assert_eq!(stores.len(), 1, "{whose}: one state store");
    let (_, kafka) = pubsubs[0];
    assert_eq!(name(kafka), pubsub_name, "{whose}: pub/sub name");
    assert_eq!(str_at(kafka, "/spec/type"), "pubsub.kafka", "{whose}");
    let (_, store) = stores[0];
    assert_eq!(name(store), store_name, "{whose}: state store name");

    assert_kafka(kafka, whose, app_id);
    for (file, component) in &components {
        assert!(
            scopes(component).contains(&app_id),
            "{}: scopes must include the app id {app_id}",
            file.display()
        );
    }
}

fn assert_kafka(kafka: &Value, whose: &str, app_id: &str) {
    for key in ["brokers", "consumerGroup", "authType"] {
        assert!(
            metadata_value(kafka, key).is_some_and(|v| !v.is_empty()),
            "{whose}: kafka {key}"
        );
    }
    assert_eq!(
        metadata_value(kafka, "consumerGroup"),
        Some(app_id),
        "{whose}: replicas share one consumer group, named after the app"
    );
    assert_eq!(
        metadata_value(kafka, "initialOffset"),
        Some("oldest"),
        "{whose}: a new consumer group starts at the beginning of the topics"
    );
    assert_eq!(
        metadata_value(kafka, "escapeHeaders"),
        Some("true"),
        "{whose}: a record header that is not a valid HTTP header would block its partition"
    );
    match metadata_value(kafka, "authType") {
        Some("none") => assert_eq!(
            metadata_value(kafka, "disableTls"),
            Some("true"),
            "{whose}: a local broker without TLS"
        ),
        Some("password") => {
            for key in ["saslUsername", "saslPassword"] {
                assert!(
                    component_metadata(kafka, key).is_some_and(|m| m.get("secretKeyRef").is_some()),
                    "{whose}: {key} from a Secret"
                );
            }
            assert_ne!(
                metadata_value(kafka, "disableTls"),
                Some("true"),
                "{whose}: SASL passwords travel over TLS"
            );
        }
        other => panic!("{whose}: authType {other:?}"),
    }
}

#[test]
fn local_components_match_the_host_and_the_plugin() {
    let (_, app) = run_file();
    let app_id = str_at(&app, "/appID");
    assert_components(&local_resources(), "deploy/components", app_id);
}

#[test]
fn kubernetes_components_match_the_host_and_the_plugin() {
    let app_id = annotation(&deployment(), "dapr.io/app-id").to_string();
    assert_components(&kubernetes_resources(), "Kubernetes", &app_id);

    // The PostgreSQL alternative replaces the Redis store under the same name.
    let postgres = yaml_doc(&deploy("kubernetes/components/statestore-postgresql.yaml"));
    assert_eq!(name(&postgres), default_of("state_store"));
    assert_eq!(str_at(&postgres, "/spec/type"), "state.postgresql");
    assert!(
        component_metadata(&postgres, "connectionString")
            .is_some_and(|m| m.get("secretKeyRef").is_some()),
        "the connection string holds a password: from a Secret"
    );
    assert!(scopes(&postgres).contains(&app_id.as_str()));
}

#[test]
fn every_install_path_uses_one_app_id() {
    let (_, app) = run_file();
    let local = str_at(&app, "/appID");
    let kubernetes = deployment();
    assert_eq!(
        annotation(&kubernetes, "dapr.io/app-id"),
        local,
        "Kubernetes and local runs share the app id the components are scoped to"
    );
    assert_eq!(
        local,
        default_of("app_id"),
        "the host's --app-id default is the Dapr app id"
    );
    let readme = read(&root().join("README.md"));
    // `dapr run` lines start the task service; `task-events-host sidecar` serves other apps.
    for line in readme
        .lines()
        .filter(|l| l.contains("--app-id ") && !l.contains("task-events-host sidecar"))
    {
        assert!(
            line.contains(&format!("--app-id {local}")),
            "README runs another app id: {line}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Tests: the Resiliency policy

#[test]
fn the_resiliency_policy_is_part_of_every_install_path() {
    let (file, policy) = resiliency();
    let file = file.canonicalize().expect("resiliency file");
    let dir = file.parent().expect("a directory").to_path_buf();
    let (_, app) = run_file();
    let app_id = str_at(&app, "/appID");
    assert!(
        scopes(&policy).contains(&app_id),
        "the policy is scoped to the app"
    );

    // `dapr run -f deploy/dapr.yaml`
    assert!(
        run_file_resource_dirs().contains(&dir),
        "deploy/dapr.yaml does not load {}",
        dir.display()
    );

    // `kubectl apply -k deploy`
    let resources = kubernetes_resources();
    let (listed, _) = the_one(&resources, "Resiliency", "Kubernetes");
    assert_eq!(
        listed.canonicalize().expect("listed file"),
        file,
        "Kubernetes applies the same policy file"
    );

    // Every `dapr run --resources-path` the README shows.
    let readme = read(&root().join("README.md"));
    let mut shown = 0;
    for line in readme.lines() {
        let mut words = line.split_whitespace();
        while let Some(word) = words.next() {
            if word == "--resources-path" {
                let path = words.next().expect("a path after --resources-path");
                let shown_dir = root()
                    .join(path)
                    .canonicalize()
                    .unwrap_or_else(|e| panic!("README's --resources-path {path}: {e}"));
                assert_eq!(
                    shown_dir, dir,
                    "README's `dapr run` loads {path} without the policy"
                );
                shown += 1;
            }
        }
    }
    assert!(shown > 0, "README shows a `dapr run --resources-path`");
    assert!(
        readme.contains("dapr run -f deploy/dapr.yaml"),
        "README shows the multi-app run"
    );
}

#[test]
fn the_resiliency_policy_redelivers_until_the_sidecar_recovers() {
    let (_, policy) = resiliency();
    let pubsub = default_of("pubsub");
    let store = default_of("state_store");
    let target = |component: &str, direction: &str, what: &str| -> Option<String> {
        policy
            .pointer(&format!(
                "/spec/targets/components/{component}/{direction}/{what}"
            ))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let timeout =
        |name: &str| go_duration(str_at(&policy, &format!("/spec/policies/timeouts/{name}")));

    // RETRY (a sidecar failure) is redelivered without end, never dead-lettered by daprd.
    let retry = target(&pubsub, "inbound", "retry")
        .expect("an inbound retry policy on the pub/sub: without it RETRY dead-letters at once");
    let retry = &policy["spec"]["policies"]["retries"][&retry];
    assert_eq!(retry["maxRetries"], -1, "inbound retries never give up");
    assert!(
        go_duration(retry["maxInterval"].as_str().unwrap_or("0s")) <= Duration::from_secs(300),
        "a recovered sidecar is noticed within minutes"
    );
    assert!(
        target(&pubsub, "inbound", "circuitBreaker").is_none(),
        "daprd treats an open inbound breaker as permanent and dead-letters"
    );

    // An inbound timeout must not cut the longest delivery the host may hold: the longest
    // retry schedule it accepts, plus one plugin call deadline per attempt.
    if let Some(name) = target(&pubsub, "inbound", "timeout") {
        let deadline = Duration::from_millis(default_number("call_deadline_ms"));
        let host_cap = Duration::from_secs(default_number("max_retry_total_secs"));
        let attempts = default_number("max_retry_delays") as u32 + 1;
        let plugin_longest = manifest()
            .retry_policies
            .iter()
            .map(|p| p.delays_ms.iter().map(|&d| u64::from(d)).sum::<u64>())
            .max()
            .unwrap_or(0);
        let holds = host_cap.max(Duration::from_millis(plugin_longest)) + deadline * attempts;
        assert!(
            timeout(&name) > holds,
            "inbound timeout {:?} would cancel a delivery the host may hold {holds:?}",
            timeout(&name)
        );
    }

    // Calls to Kafka and the state store end before the host's own call gives up, and a
    // failing backend is cut off by a breaker.
    let host_call = Duration::from_millis(default_number("sidecar_timeout_ms"));
    for component in [pubsub.as_str(), store.as_str()] {
        let name = target(component, "outbound", "timeout")
            .unwrap_or_else(|| panic!("an outbound timeout on {component}"));
        assert!(
            timeout(&name) < host_call,
            "{component}: outbound timeout {:?} >= the host's sidecar timeout {host_call:?}",
            timeout(&name)
        );
        let breaker = target(component, "outbound", "circuitBreaker")
            .unwrap_or_else(|| panic!("an outbound circuit breaker on {component}"));
        let breaker = &policy["spec"]["policies"]["circuitBreakers"][&breaker];
        assert!(
            breaker["trip"].as_str().is_some() && breaker["timeout"].as_str().is_some(),
            "{component}: breaker needs trip and timeout"
        );
    }

    // Every policy a target names exists.
    let targets = policy
        .pointer("/spec/targets/components")
        .and_then(Value::as_object)
        .expect("targets.components");
    for (component, directions) in targets {
        for (direction, uses) in directions.as_object().expect("inbound/outbound") {
            for (what, policy_name) in uses.as_object().expect("policy names") {
                let section = match what.as_str() {
                    "timeout" => "timeouts",
                    "retry" => "retries",
                    "circuitBreaker" => "circuitBreakers",
                    other => panic!("{component}.{direction}: unknown {other}"),
                };
                let policy_name = policy_name.as_str().expect("a policy name");
                assert!(
                    policy["spec"]["policies"][section]
                        .get(policy_name)
                        .is_some(),
                    "{component}.{direction}.{what}: no {section}.{policy_name}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests: local Dapr

#[test]
fn the_run_file_starts_the_host_as_daprd_expects() {
    let (_, app) = run_file();
    assert_eq!(
        app["appPort"].as_u64().map(|p| p.to_string()),
        Some(default_of("app_port")),
        "dapr run sets APP_PORT from appPort; the host's default port is the same"
    );
    assert_eq!(app["appProtocol"], "http");
    assert_eq!(app["enableAppHealthCheck"], true);
    assert_eq!(
        app["appHealthCheckPath"], "/healthz",
        "daprd probes the host's health route"
    );
    let command: Vec<&str> = app["command"]
        .as_array()
        .expect("command")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(command.first().copied(), Some(host_bin().as_str()));
    assert_serve_args(&command[1..], "deploy/dapr.yaml");
    let envs = serve_envs();
    for (var, value) in app["env"].as_object().expect("env") {
        assert!(
            envs.contains(var),
            "deploy/dapr.yaml sets {var}, which the host does not read"
        );
        assert!(
            value.is_string(),
            "{var}: the CLI reads env values as strings"
        );
    }
    let app_dir = deploy("").join(str_at(&app, "/appDirPath"));
    assert_eq!(
        app_dir.canonicalize().expect("appDirPath"),
        root().canonicalize().expect("root"),
        "the app runs in the repository root"
    );
}

// ---------------------------------------------------------------------------------------------
// Tests: Kubernetes

#[test]
fn the_deployment_wires_daprd_to_the_host() {
    let deployment = deployment();
    let container = app_container(&deployment);
    let port = container["ports"]
        .as_array()
        .and_then(|p| p.first())
        .cloned()
        .expect("a container port");
    let container_port = port["containerPort"].as_u64().expect("containerPort");
    let port_name = port["name"].as_str().expect("a named port");

    // daprd calls the port the host listens on.
    assert_eq!(annotation(&deployment, "dapr.io/enabled"), "true");
    assert_eq!(
        annotation(&deployment, "dapr.io/app-port"),
        container_port.to_string()
    );
    let listen_port = env_value(&container, &flag("app_port").env.expect("APP_PORT"))
        .map(str::to_string)
        .unwrap_or_else(|| default_of("app_port"));
    assert_eq!(listen_port, container_port.to_string(), "APP_PORT");
    assert_eq!(annotation(&deployment, "dapr.io/app-protocol"), "http");

    // The kubelet's probes come from outside the pod: the host listens on every interface.
    let listen: IpAddr = env_value(&container, &flag("listen").env.expect("listen env"))
        .expect("the Deployment sets the listen address")
        .parse()
        .expect("an IP address");
    assert!(listen.is_unspecified(), "listen on 0.0.0.0, not {listen}");

    // Health: daprd's probe and the kubelet's use the host's open health route.
    assert_eq!(
        annotation(&deployment, "dapr.io/enable-app-health-check"),
        "true"
    );
    let health = annotation(&deployment, "dapr.io/app-health-check-path");
    assert_eq!(health, "/healthz");
    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"], health, "{probe} path");
        assert!(
            get["port"] == port_name || get["port"] == container_port,
            "{probe} port"
        );
    }

    // Tokens: what the injector gives daprd, the app reads from the same Secrets.
    for (annotation_key, env_id) in [
        ("dapr.io/app-token-secret", "app_api_token"),
        ("dapr.io/api-token-secret", "dapr_api_token"),
    ] {
        let secret = annotation(&deployment, annotation_key);
        let var = flag(env_id).env.expect("a token env");
        let entry = env_entry(&container, &var)
            .unwrap_or_else(|| panic!("the app container does not set {var}"));
        let reference = &entry["valueFrom"]["secretKeyRef"];
        assert_eq!(reference["name"], secret, "{var} from the Secret {secret}");
        assert_eq!(
            reference["key"], "token",
            "the injector reads the key `token`"
        );
        assert_ne!(reference["optional"], true, "{var} is required");
    }

    // Dapr mode, never the embedded sidecar; every variable is one the host reads.
    assert_eq!(
        env_value(&container, &flag("sidecar").env.expect("sidecar env")),
        Some("dapr")
    );
    let envs = serve_envs();
    for entry in container["env"].as_array().expect("env") {
        let var = entry["name"].as_str().expect("env name");
        assert!(
            envs.contains(var),
            "the Deployment sets {var}, which the host does not read"
        );
    }
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_serve_args(&args, "the Deployment");

    // The image is the one kustomize rewrites to the built image.
    let kustomization = kustomization();
    let images: Vec<&str> = kustomization["images"]
        .as_array()
        .expect("images")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert!(images.contains(&container["image"].as_str().expect("image")));
}

#[test]
fn the_pod_shuts_down_after_the_host_finishes_its_deliveries() {
    let deployment = deployment();
    let host_grace = Duration::from_millis(default_number("shutdown_grace_ms"));
    let daprd_grace = Duration::from_secs(
        annotation(&deployment, "dapr.io/graceful-shutdown-seconds")
            .parse()
            .expect("seconds"),
    );
    let pod_grace = Duration::from_secs(
        deployment
            .pointer("/spec/template/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_u64)
            .expect("terminationGracePeriodSeconds"),
    );
    assert!(
        host_grace < daprd_grace,
        "daprd ({daprd_grace:?}) must outlive the host's drain ({host_grace:?}) so it can publish"
    );
    assert!(
        daprd_grace < pod_grace,
        "the kubelet's SIGKILL ({pod_grace:?}) must come after daprd's shutdown ({daprd_grace:?})"
    );
}

#[test]
fn the_plugin_volume_is_shared_with_plugin_sync_and_the_rest_is_writable_where_needed() {
    let deployment = deployment();
    let spec = &deployment["spec"]["template"]["spec"];
    let container = app_container(&deployment);

    // The host reads the plugin from a volume that plugin-sync writes.
    let guest = env_value(&container, &flag("guest").env.expect("guest env"))
        .expect("the Deployment sets the plugin path");
    let (volume, read_only) =
        volume_holding(&container, guest).expect("the plugin path is on a volume");
    assert!(read_only, "the host only reads the plugin volume");
    let sync = spec["initContainers"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "plugin-sync"))
        .cloned()
        .expect("a plugin-sync container");
    assert_eq!(
        sync["restartPolicy"], "Always",
        "plugin-sync keeps running to follow the ConfigMap"
    );
    let sync_mount = mount_path(&sync, &volume).expect("plugin-sync mounts the plugin volume");
    assert_ne!(sync_mount["readOnly"], true);
    let plugin_dir = env_value(&sync, "PLUGIN_DIR").expect("PLUGIN_DIR");
    assert_eq!(plugin_dir, sync_mount["mountPath"]);
    let host_mount = mount_path(&container, &volume).expect("mounted");
    assert_eq!(
        Path::new(host_mount["mountPath"].as_str().expect("path")).join("plugin.wasm"),
        Path::new(guest),
        "plugin-sync writes <PLUGIN_DIR>/plugin.wasm, the host reads {guest}"
    );
    let startup = sync["startupProbe"]["exec"]["command"]
        .as_array()
        .expect("plugin-sync startupProbe")
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        startup.contains(&format!("{plugin_dir}/plugin.wasm")),
        "the host starts once the plugin is there: {startup}"
    );

    // plugin-sync reads the ConfigMap of plugin.yaml and runs its script.
    let source_dir = env_value(&sync, "SOURCE_DIR").expect("SOURCE_DIR");
    let (source_volume, _) = volume_holding(&sync, &format!("{source_dir}/url")).expect("source");
    let volumes = spec["volumes"].as_array().expect("volumes");
    let config_map = volumes
        .iter()
        .find(|v| v["name"] == source_volume.as_str())
        .and_then(|v| v["configMap"]["name"].as_str())
        .expect("the source volume is a ConfigMap");
    let plugin = yaml_doc(&deploy("kubernetes/plugin.yaml"));
    assert_eq!(name(&plugin), config_map);
    for key in ["url", "sha256", "sync.sh"] {
        assert!(plugin["data"].get(key).is_some(), "ConfigMap key {key}");
    }
    let command: Vec<&str> = sync["command"]
        .as_array()
        .expect("command")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(command.contains(&format!("{source_dir}/sync.sh").as_str()));

    // The root filesystem is read-only, so the data directory (compile cache) is a volume.
    let data_dir = env_value(&container, &flag("data_dir").env.expect("data env"))
        .expect("the Deployment sets the data directory");
    let (_, data_read_only) =
        volume_holding(&container, data_dir).expect("the data directory is on a volume");
    assert!(!data_read_only, "the data directory is writable");
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        spec["securityContext"]["runAsUser"]
            .as_u64()
            .map(|u| u.to_string()),
        Some(dockerfile_user()),
        "the pod runs as the image's user"
    );
}

#[test]
fn the_disruption_budget_and_autoscaler_select_the_deployment() {
    let resources = kubernetes_resources();
    let deployment = deployment();
    let labels = deployment
        .pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object)
        .expect("pod labels");
    assert!(
        deployment.pointer("/spec/replicas").is_none(),
        "the autoscaler owns the replica count"
    );

    let (_, pdb) = the_one(&resources, "PodDisruptionBudget", "Kubernetes");
    let selector = pdb
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .expect("PDB selector");
    assert!(!selector.is_empty());
    for (key, value) in selector {
        assert_eq!(
            labels.get(key),
            Some(value),
            "the PDB selects the pods by {key}"
        );
    }
    let max_unavailable = pdb
        .pointer("/spec/maxUnavailable")
        .and_then(Value::as_u64)
        .expect("maxUnavailable");

    let (_, hpa) = the_one(&resources, "HorizontalPodAutoscaler", "Kubernetes");
    assert_eq!(
        hpa.pointer("/spec/scaleTargetRef/kind"),
        Some(&Value::from("Deployment"))
    );
    assert_eq!(
        hpa.pointer("/spec/scaleTargetRef/name")
            .and_then(Value::as_str),
        Some(name(&deployment))
    );
    let min = hpa
        .pointer("/spec/minReplicas")
        .and_then(Value::as_u64)
        .expect("minReplicas");
    let max = hpa
        .pointer("/spec/maxReplicas")
        .and_then(Value::as_u64)
        .expect("maxReplicas");
    assert!(
        min > max_unavailable,
        "a drain must leave a pod consuming: minReplicas {min}, maxUnavailable {max_unavailable}"
    );
    assert!(min <= max);
}

// ---------------------------------------------------------------------------------------------
// Tests: the Dockerfile

/// Instructions of deploy/Dockerfile, continuation lines joined, comments left out.
fn dockerfile() -> Vec<(String, String)> {
    let text = read(&deploy("Dockerfile"));
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(trimmed);
                let (op, rest) = current.split_once(' ').unwrap_or((&current, ""));
                instructions.push((op.to_ascii_uppercase(), rest.trim().to_string()));
                current.clear();
            }
        }
    }
    instructions
}

fn dockerfile_user() -> String {
    let user = dockerfile()
        .into_iter()
        .filter(|(op, _)| op == "USER")
        .map(|(_, arg)| arg)
        .next_back()
        .expect("a USER");
    user.split(':').next().unwrap_or_default().to_string()
}

fn json_words(arg: &str) -> Vec<String> {
    serde_json::from_str(arg).unwrap_or_else(|e| panic!("{arg}: use the JSON form ({e})"))
}

#[test]
fn every_path_and_command_in_the_dockerfile_exists() {
    let packages = workspace_packages();
    let bin = host_bin();
    let wasm = task_plugin_build_output();
    let mut stages: Vec<String> = Vec::new();
    let mut workdir = String::from("/");
    let mut produced: BTreeSet<String> = BTreeSet::new(); // paths the build stage creates
    let mut runtime_files: BTreeSet<String> = BTreeSet::new(); // files of the last stage
    let mut entrypoint = Vec::new();
    let mut cmd = Vec::new();
    let mut env_names = Vec::new();
    let mut exposed = Vec::new();
    for (op, arg) in dockerfile() {
        let words: Vec<&str> = arg.split_whitespace().collect();
        match op.as_str() {
            "FROM" => {
                runtime_files.clear();
                match words.as_slice() {
                    [_, as_, name] if as_.eq_ignore_ascii_case("as") => {
                        stages.push(name.to_string())
                    }
                    [_] => stages.push(String::new()),
                    other => panic!("FROM {other:?}"),
                }
            }
            "WORKDIR" => workdir = arg.clone(),
            "COPY" => {
                let from = words
                    .iter()
                    .find_map(|w| w.strip_prefix("--from="))
                    .map(str::to_string);
                let paths: Vec<&str> = words
                    .iter()
                    .copied()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                let (dest, sources) = paths.split_last().expect("COPY src dest");
                for source in sources {
                    match &from {
                        None => assert!(
                            root().join(source).exists(),
                            "COPY {source}: not in the repository"
                        ),
                        Some(stage) => {
                            assert!(stages.contains(stage), "COPY --from={stage}: no such stage");
                            assert!(
                                produced.contains(*source),
                                "COPY --from={stage} {source}: the build does not produce it"
                            );
                        }
                    }
                }
                runtime_files.insert(dest.to_string());
            }
            "RUN" => {
                for command in arg.split("&&").map(str::trim) {
                    let words: Vec<&str> = command
                        .split_whitespace()
                        .filter(|w| !w.contains('=') || w.starts_with('-'))
                        .collect();
                    match words.first().copied() {
                        Some("cargo") => {
                            for pair in words.windows(2) {
                                if pair[0] == "-p" || pair[0] == "--package" {
                                    assert!(
                                        packages.contains(pair[1]),
                                        "cargo -p {}: not a workspace package",
                                        pair[1]
                                    );
                                }
                            }
                        }
                        Some("mkdir") => {
                            for dir in words.iter().skip(1).filter(|w| !w.starts_with('-')) {
                                produced.insert(dir.to_string());
                            }
                        }
                        Some("cp") => {
                            let (dest, sources) = words[1..].split_last().expect("cp src dest");
                            for source in sources {
                                let built =
                                    *source == format!("target/release/{bin}") || *source == wasm;
                                assert!(
                                    built || root().join(source).exists(),
                                    "cp {source}: neither a build output ({bin}, {wasm}) nor \
                                     a file of the repository"
                                );
                                let file = Path::new(source).file_name().expect("a file name");
                                produced.insert(format!(
                                    "{}/{}",
                                    dest.trim_end_matches('/'),
                                    file.to_string_lossy()
                                ));
                            }
                        }
                        Some(other) => panic!("RUN {other}: not a command this test knows"),
                        None => {}
                    }
                }
            }
            "ENTRYPOINT" => entrypoint = json_words(&arg),
            "CMD" => cmd = json_words(&arg),
            "ENV" => {
                for word in &words {
                    let (name, _) = word.split_once('=').expect("ENV NAME=value");
                    env_names.push(name.to_string());
                }
            }
            "EXPOSE" => exposed.extend(words.iter().map(|w| w.to_string())),
            "USER" | "ARG" | "LABEL" => {}
            other => panic!("{other}: not an instruction this test knows"),
        }
    }
    assert!(workdir.starts_with('/'), "WORKDIR is absolute");
    assert!(
        stages.last().is_some_and(|s| s.is_empty()),
        "the runtime image is the last stage (the default target)"
    );
    assert_eq!(
        entrypoint.first().map(String::as_str),
        runtime_files
            .iter()
            .find(|f| f.ends_with(&format!("/{bin}")))
            .map(String::as_str),
        "ENTRYPOINT runs the host binary copied into the image"
    );
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    assert_serve_args(&cmd, "the Dockerfile's CMD");
    let envs = serve_envs();
    for name in &env_names {
        assert!(envs.contains(name), "ENV {name}: the host does not read it");
    }
    assert_eq!(
        exposed,
        [default_of("app_port")],
        "EXPOSE the host's app port"
    );
    assert_ne!(dockerfile_user(), "0", "a non-root user");
    assert!(
        dockerfile_user().parse::<u32>().is_ok(),
        "a numeric USER (Kubernetes checks it)"
    );

    // The host really has the subcommand the image runs.
    let help = Command::new(HOST_EXE)
        .args([cmd[0], "--help"])
        .output()
        .expect("running the host");
    assert!(help.status.success(), "`{} --help` fails", cmd[0]);

    // The build context leaves out build output and git history.
    let ignore = read(&deploy("Dockerfile.dockerignore"));
    let ignored: Vec<&str> = ignore.lines().map(str::trim).collect();
    for entry in ["target", ".git"] {
        assert!(ignored.contains(&entry), "Dockerfile.dockerignore: {entry}");
    }
}

// ---------------------------------------------------------------------------------------------
// Tests that run things

fn tool_missing(tools: &[&str]) -> Option<String> {
    tools
        .iter()
        .find(|t| {
            Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .map(|o| !o.status.success())
                .unwrap_or(true)
        })
        .map(|t| t.to_string())
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn plugin_sync_replaces_the_plugin_only_with_the_named_bytes() {
    if let Some(tool) = tool_missing(&["sh", "curl", "sha256sum", "cut"]) {
        println!("`{tool}` is not installed: not running deploy/kubernetes/plugin.yaml's sync.sh");
        return;
    }
    let plugin = yaml_doc(&deploy("kubernetes/plugin.yaml"));
    let script = str_at(&plugin, "/data/sync.sh");
    let dir = tempfile::tempdir().expect("a temp dir");
    let plugins = dir.path().join("plugins");
    let source = dir.path().join("source");
    let store = dir.path().join("store");
    for d in [&plugins, &source, &store] {
        std::fs::create_dir(d).expect("a dir");
    }
    std::fs::write(source.join("sync.sh"), script).expect("script");
    let sync = |url: &str, sha256: &str| {
        std::fs::write(source.join("url"), url).expect("url");
        std::fs::write(source.join("sha256"), sha256).expect("sha256");
        Command::new("sh")
            .arg(source.join("sync.sh"))
            .env("PLUGIN_DIR", &plugins)
            .env("SOURCE_DIR", &source)
            .env("ONCE", "1")
            .output()
            .expect("running sync.sh")
    };
    let publish = |file: &str, bytes: &[u8]| {
        let path = store.join(file);
        std::fs::write(&path, bytes).expect("publishing");
        format!("file://{}", path.display())
    };
    let current = || std::fs::read(plugins.join("plugin.wasm")).ok();
    let leftovers = || {
        std::fs::read_dir(&plugins)
            .expect("plugins")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n != "plugin.wasm")
            .collect::<Vec<_>>()
    };

    let v1 = task_plugin_bytes().to_vec();
    let url1 = publish("v1.wasm", &v1);
    let out = sync(&url1, &sha256_hex(&v1));
    assert!(
        out.status.success(),
        "first sync: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(current(), Some(v1.clone()));

    // A wrong checksum keeps the current plugin.
    let v2 = task_plugin_variant(2);
    let url2 = publish("v2.wasm", &v2);
    let out = sync(&url2, &sha256_hex(&v1));
    assert!(!out.status.success(), "a checksum mismatch fails");
    assert_eq!(current(), Some(v1.clone()), "and leaves the plugin alone");

    // An unreachable plugin keeps the current one.
    let out = sync(&format!("file://{}/missing.wasm", store.display()), "");
    assert!(!out.status.success());
    assert_eq!(current(), Some(v1));

    // The named bytes replace it by a rename (a new inode: the host's watcher never sees the
    // file half-written), through a temporary file that does not stay behind.
    let inode = || {
        std::fs::metadata(plugins.join("plugin.wasm"))
            .expect("the plugin")
            .ino()
    };
    let before = inode();
    let out = sync(&url2, &sha256_hex(&v2));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(current(), Some(v2));
    assert_ne!(
        inode(),
        before,
        "the plugin was written in place, not renamed over"
    );
    assert!(leftovers().is_empty(), "left behind: {:?}", leftovers());
}

/// The app container's environment, with secrets filled in and paths moved under `dir`.
fn pod_environment(
    dir: &Path,
    app_token: &str,
    dapr_port: u16,
) -> (Vec<String>, Vec<(String, String)>) {
    let deployment = deployment();
    let container = app_container(&deployment);
    let mut envs = Vec::new();
    for entry in container["env"].as_array().expect("env") {
        let var = entry["name"].as_str().expect("name").to_string();
        let value = match entry.get("value").and_then(Value::as_str) {
            Some(path) if path.starts_with('/') => {
                let moved = dir.join(path.trim_start_matches('/'));
                std::fs::create_dir_all(moved.parent().expect("a parent")).expect("dirs");
                moved.display().to_string()
            }
            Some(value) => value.to_string(),
            None if var == flag("app_api_token").env.expect("env") => app_token.to_string(),
            None => format!("{var}-from-a-secret"),
        };
        envs.push((var, value));
    }
    // What the injector adds to the app container.
    envs.push(("DAPR_HTTP_PORT".into(), dapr_port.to_string()));
    let args = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    (args, envs)
}

#[tokio::test]
async fn the_host_serves_daprd_and_the_kubelet_with_the_pods_environment() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let token = "app-token-from-the-secret";
    let (args, mut envs) = pod_environment(dir.path(), token, free_port());
    let guest_env = flag("guest").env.expect("env");
    let guest = envs
        .iter()
        .find(|(k, _)| *k == guest_env)
        .map(|(_, v)| PathBuf::from(v))
        .expect("the plugin path");
    std::fs::write(&guest, task_plugin_bytes()).expect("the plugin, as plugin-sync leaves it");

    // The test picks the port (`start_on` passes --app-port, which wins over APP_PORT).
    let port = free_port();
    let port_env = flag("app_port").env.expect("env");
    envs.retain(|(k, _)| *k != port_env);
    assert_eq!(args.first().map(String::as_str), Some("serve"));
    let extra: Vec<&str> = args[1..].iter().map(String::as_str).collect();
    let env_refs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut host = HostProcess::start_on(port, HOST_EXE, dir.path(), &extra, &env_refs).await;

    assert!(
        host.log()
            .contains(&format!("listening on http://0.0.0.0:{port}")),
        "the host listens on every interface:\n{}",
        host.log()
    );
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");

    // daprd's app health probe and the kubelet's probes send no token.
    let health = client.get(url("/healthz")).send().await.expect("healthz");
    assert_eq!(health.status(), 200);

    // Everything daprd calls needs the token from the Secret.
    let refused = client
        .get(url("/dapr/subscribe"))
        .send()
        .await
        .expect("subscribe");
    assert_eq!(refused.status(), 401, "no token, no subscriptions");
    let subscribe: Value = client
        .get(url("/dapr/subscribe"))
        .header("dapr-api-token", token)
        .send()
        .await
        .expect("subscribe")
        .json()
        .await
        .expect("JSON");
    let pubsub = default_of("pubsub");
    let served: Vec<(String, String)> = subscribe
        .as_array()
        .expect("an array")
        .iter()
        .map(|s| {
            assert_eq!(
                s["pubsubname"],
                pubsub.as_str(),
                "the component deploy/ defines"
            );
            (
                str_at(s, "/topic").to_string(),
                str_at(s, "/route").to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = manifest()
        .subscriptions
        .iter()
        .map(|s| (s.topic.clone(), s.route.clone()))
        .collect();
    assert_eq!(served, expected, "the plugin's routes");
    let _status = host.terminate(Duration::from_secs(30)).await;
}

#[test]
fn durations_parse_as_go_writes_them() {
    assert_eq!(go_duration("75m"), Duration::from_secs(4500));
    assert_eq!(go_duration("1h30m"), Duration::from_secs(5400));
    assert_eq!(go_duration("4s"), Duration::from_secs(4));
    assert_eq!(go_duration("500ms"), Duration::from_millis(500));
}
