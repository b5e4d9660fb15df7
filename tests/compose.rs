//! `docker-compose.yml` cannot run here (no Docker engine), so this reads it and checks that what it
//! says agrees with the code: the services and their ports, Neo4j's health check and volume, and
//! facegraph's configuration, loaded with the same settings code the binary uses.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;

use facegraph::settings::{Overrides, Settings, StoreLocation};
use secrecy::ExposeSecret;
use yaml_rust2::{Yaml, YamlLoader};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn compose() -> Yaml {
    let text = std::fs::read_to_string(root().join("docker-compose.yml")).expect("reads");
    let mut docs = YamlLoader::load_from_str(&text).expect("docker-compose.yml is valid YAML");
    assert_eq!(docs.len(), 1, "one YAML document");
    docs.remove(0)
}

fn str_of<'a>(y: &'a Yaml, what: &str) -> &'a str {
    y.as_str()
        .unwrap_or_else(|| panic!("{what} should be a string, is {y:?}"))
}

fn list<'a>(y: &'a Yaml, what: &str) -> Vec<&'a str> {
    y.as_vec()
        .unwrap_or_else(|| panic!("{what} should be a list, is {y:?}"))
        .iter()
        .map(|v| str_of(v, what))
        .collect()
}

/// `KEY=VALUE` lines of an env file, comments and blank lines skipped.
fn env_file(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("{l:?} is not KEY=VALUE"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// The container ports a service publishes, from `HOST:CONTAINER` or `IP:HOST:CONTAINER`.
fn container_ports(service: &Yaml, name: &str) -> Vec<u16> {
    list(&service["ports"], &format!("{name}.ports"))
        .into_iter()
        .map(|p| {
            let container = p.rsplit(':').next().unwrap_or(p);
            container
                .parse()
                .unwrap_or_else(|_| panic!("{name} port {p:?} does not end in a number"))
        })
        .collect()
}

#[test]
fn neo4j_is_version_5_with_browser_bolt_a_volume_and_a_health_check() {
    let c = compose();
    let neo4j = &c["services"]["neo4j"];
    let image = str_of(&neo4j["image"], "neo4j.image");
    assert!(
        image.starts_with("neo4j:5") && image.contains("community"),
        "{image}"
    );
    let ports = container_ports(neo4j, "neo4j");
    assert!(
        ports.contains(&7474) && ports.contains(&7687),
        "Browser and Bolt: {ports:?}"
    );
    assert!(list(&neo4j["volumes"], "neo4j.volumes")
        .iter()
        .any(|v| v.ends_with(":/data")));
    let test = list(&neo4j["healthcheck"]["test"], "neo4j.healthcheck.test").join(" ");
    assert!(test.contains("7474"), "{test}");
    assert!(list(&neo4j["env_file"], "neo4j.env_file").contains(&"./neo4j.env"));
}

#[test]
fn facegraph_starts_after_neo4j_is_healthy_and_is_configured_for_it() {
    let c = compose();
    let services = c["services"].as_hash().expect("services");
    assert!(services.contains_key(&Yaml::String("facegraph".into())));
    let fg = &c["services"]["facegraph"];
    assert_eq!(
        str_of(
            &fg["depends_on"]["neo4j"]["condition"],
            "facegraph.depends_on.neo4j.condition"
        ),
        "service_healthy"
    );
    assert!(list(&fg["env_file"], "facegraph.env_file").contains(&"./neo4j.env"));

    // The environment the container gets: the example env file (which neo4j.env copies), then the
    // service's own environment, read by the settings code exactly as the binary reads it.
    let example = env_file(&root().join("neo4j.env.example"));
    let mut env: BTreeMap<String, String> = example.clone();
    for (k, v) in fg["environment"].as_hash().expect("facegraph.environment") {
        let v = match v {
            Yaml::String(s) => s.clone(),
            Yaml::Integer(i) => i.to_string(),
            other => panic!("environment value {other:?}"),
        };
        env.insert(str_of(k, "environment key").to_owned(), v);
    }
    let asked = RefCell::new(Vec::new());
    let settings = Settings::load_with_env(&Overrides::default(), |k| {
        asked.borrow_mut().push(k.to_owned());
        env.get(k).cloned()
    })
    .expect("the compose file's settings load");
    // Every variable the stack sets for facegraph is one that facegraph reads: the settings' own,
    // or the log filter that main reads before them (a typo, or another program's variable such
    // as RUST_LOG, would be silently ignored by the container). NEO4J_AUTH is Neo4j's, shared
    // through the env file.
    let main_rs = std::fs::read_to_string(root().join("src/main.rs")).unwrap();
    for key in env.keys().filter(|k| k.as_str() != "NEO4J_AUTH") {
        let read_by_main = main_rs.contains(&format!("\"{key}\""));
        assert!(
            asked.borrow().contains(key) || read_by_main,
            "{key} is set in the stack but facegraph never reads it"
        );
    }
    // The store is the neo4j service's Bolt port.
    let StoreLocation::Bolt(url) = &settings.store else {
        panic!(
            "facegraph in the stack must use the Neo4j store, not {}",
            settings.store
        );
    };
    let (host, port) = url
        .trim_start_matches("bolt://")
        .trim_start_matches("neo4j://")
        .split_once(':')
        .expect("bolt://HOST:PORT");
    assert_eq!(host, "neo4j", "the Bolt host is the neo4j service");
    let port: u16 = port.parse().expect("a port");
    assert!(container_ports(&c["services"]["neo4j"], "neo4j").contains(&port));
    // Its login is the one Neo4j is given.
    let (user, password) = example["NEO4J_AUTH"]
        .split_once('/')
        .expect("NEO4J_AUTH is user/password");
    assert_eq!(settings.neo4j.user, user);
    assert_eq!(
        settings
            .neo4j
            .password
            .as_ref()
            .map(|p| p.expose_secret().to_owned()),
        Some(password.to_owned())
    );
    assert!(
        password.len() >= 8,
        "Neo4j wants passwords of 8 characters or more"
    );
    assert!(
        settings.api_keys_env.is_some(),
        "serve refuses to start without keys"
    );
    // serve listens on the port the stack publishes, on every interface of the container.
    let command = list(&fg["command"], "facegraph.command");
    assert_eq!(command[0], "serve");
    let listen = command
        .iter()
        .position(|a| *a == "--listen")
        .map(|i| command[i + 1])
        .expect("serve --listen ADDR");
    let addr: std::net::SocketAddr = listen.parse().expect("an address");
    assert!(
        addr.ip().is_unspecified(),
        "{listen}: reachable from the host"
    );
    assert!(container_ports(fg, "facegraph").contains(&addr.port()));
    // The image it builds runs the same binary.
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).expect("a Dockerfile");
    assert_eq!(str_of(&fg["build"], "facegraph.build"), ".");
    assert!(dockerfile.contains("ENTRYPOINT [\"facegraph\"]"));
    assert!(
        dockerfile.contains("models fetch"),
        "the image carries the models"
    );
}

#[test]
fn the_example_env_file_holds_no_real_secret() {
    let example = env_file(&root().join("neo4j.env.example"));
    for (k, v) in &example {
        if k.contains("PASSWORD") || k == "NEO4J_AUTH" || k.contains("KEYS") {
            assert!(
                v.contains("CHANGE-ME"),
                "{k} in the example must be a placeholder"
            );
        }
    }
    let ignored = std::fs::read_to_string(root().join(".gitignore")).expect(".gitignore");
    assert!(ignored.lines().any(|l| l.trim() == "/neo4j.env"));
}
