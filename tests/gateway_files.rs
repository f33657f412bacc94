//! The gateway snippets in `deploy/` that no CI machine can run (Envoy,
//! Traefik, Istio, Kubernetes), checked for what makes them safe: the
//! endpoint's path, fail-closed settings, the identity headers replacing
//! the client's, and every variable the sidecar sets being one the binary
//! reads. (nginx's and Caddy's run for real: services/projector/tests/gateways.rs.)
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use revocation_test_support::repo_root;
use serde::Deserialize;
use serde_yaml::Value;

const PATH: &str = "/v1/forward-auth";
const HEADERS: [&str; 2] = ["x-auth-user", "x-auth-session"];

fn yaml(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml::Deserializer::from_str(&text).map(|doc| Value::deserialize(doc).unwrap()).collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence().unwrap().iter().map(|s| s.as_str().unwrap().to_ascii_lowercase()).collect()
}

fn patterns(v: &Value) -> Vec<String> {
    v["patterns"].as_sequence().unwrap().iter().map(|p| p["exact"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn envoy_asks_the_endpoint_fails_closed_and_replaces_the_identity_headers() {
    let doc = &yaml("deploy/envoy/envoy.yaml")[0];
    let filters =
        &doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"];
    // The client's identity headers are removed before the check.
    assert_eq!(filters[0]["name"], "envoy.filters.http.header_mutation");
    let removed: Vec<&str> = filters[0]["typed_config"]["mutations"]["request_mutations"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| m["remove"].as_str().unwrap())
        .collect();
    assert_eq!(removed, HEADERS);
    let manager = &doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    assert_eq!(manager["common_http_protocol_options"]["headers_with_underscores_action"], "REJECT_REQUEST");
    let authz = &filters[1]["typed_config"];
    assert_eq!(filters[1]["name"], "envoy.filters.http.ext_authz");
    assert_eq!(authz["failure_mode_allow"], false);
    assert_eq!(authz["status_on_error"]["code"], "ServiceUnavailable");
    let service = &authz["http_service"];
    assert_eq!(service["path_prefix"], PATH);
    assert_eq!(patterns(&service["authorization_request"]["allowed_headers"]), ["authorization"]);
    assert_eq!(patterns(&service["authorization_response"]["allowed_upstream_headers"]), HEADERS);
    assert!(patterns(&service["authorization_response"]["allowed_client_headers"]).contains(&"retry-after".into()));
    let clusters: Vec<&str> = doc["static_resources"]["clusters"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(clusters.contains(&service["server_uri"]["cluster"].as_str().unwrap()));
}

#[test]
fn traefik_asks_the_endpoint_and_copies_the_identity_headers() {
    let doc = &yaml("deploy/traefik/dynamic.yml")[0];
    let auth = &doc["http"]["middlewares"]["session-forward-auth"]["forwardAuth"];
    assert!(auth["address"].as_str().unwrap().ends_with(PATH));
    assert_eq!(strings(&auth["authResponseHeaders"]), HEADERS);
    assert_eq!(strings(&doc["http"]["routers"]["app"]["middlewares"]), ["session-forward-auth"]);
}

#[test]
fn istio_uses_the_endpoint_as_a_custom_provider_that_fails_closed() {
    let provider = &yaml("deploy/istio/extension-provider.yaml")[0]["extensionProviders"][0];
    let http = &provider["envoyExtAuthzHttp"];
    assert_eq!(http["pathPrefix"], PATH);
    assert_eq!(http["failOpen"], false);
    assert_eq!(http["statusOnError"], "503");
    assert_eq!(strings(&http["includeRequestHeadersInCheck"]), ["authorization"]);
    assert_eq!(strings(&http["headersToUpstreamOnAllow"]), HEADERS);
    let policy = &yaml("deploy/istio/authorization-policy.yaml")[0];
    assert_eq!(policy["spec"]["action"], "CUSTOM");
    assert_eq!(policy["spec"]["provider"]["name"], provider["name"]);
}

#[test]
fn the_kubernetes_sidecar_is_native_probed_and_configured_with_variables_the_binary_reads() {
    let doc = &yaml("deploy/kubernetes/sidecar.yaml")[0];
    let pod = &doc["spec"]["template"]["spec"];
    let sidecar = &pod["initContainers"][0];
    assert_eq!(sidecar["name"], "projector");
    assert_eq!(sidecar["restartPolicy"], "Always", "a native sidecar");
    assert_eq!(sidecar["livenessProbe"]["httpGet"]["path"], "/livez");
    assert_eq!(sidecar["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(sidecar["startupProbe"]["httpGet"]["path"], "/readyz");
    let cli: String = std::fs::read_dir(repo_root().join("services/projector/src/cli"))
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    for var in sidecar["env"].as_sequence().unwrap() {
        let name = var["name"].as_str().unwrap();
        assert!(cli.contains(&format!("env = \"{name}\"")), "the projector does not read {name}");
    }
    // The gateway in the pod runs the nginx snippet the tests run.
    let text = std::fs::read_to_string(repo_root().join("deploy/kubernetes/sidecar.yaml")).unwrap();
    assert!(text.contains("--from-file=deploy/nginx/forward-auth.conf"));
    let nginx = std::fs::read_to_string(repo_root().join("deploy/nginx/forward-auth.conf")).unwrap();
    assert!(nginx.contains(&format!("proxy_pass http://projector{PATH};")));
    assert!(nginx.contains("listen 8088;") && pod["containers"][0]["ports"][0]["containerPort"] == 8088);
}
