//! `docker-compose.yml` cannot run here (no Docker engine), so this reads it and checks that what it
//! says agrees with the code: the services and their ports, Neo4j's and Kafka's health checks and
//! settings, and the configuration of facegraph's services, loaded with the settings code it uses.

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

/// The environment a facegraph service's container gets: the example env file (which neo4j.env
/// copies), then the service's own environment.
fn container_env(c: &Yaml, name: &str) -> BTreeMap<String, String> {
    let service = &c["services"][name];
    assert!(
        list(&service["env_file"], &format!("{name}.env_file")).contains(&"./neo4j.env"),
        "{name} reads neo4j.env"
    );
    let mut env = env_file(&root().join("neo4j.env.example"));
    env.extend(environment(service, name));
    env
}

/// Loads `env` with the settings code exactly as the binary does, and checks that every variable
/// the stack sets for facegraph is one that facegraph reads: the settings' own, or the log filter
/// that main reads before them (a typo, or another program's variable such as RUST_LOG, would be
/// silently ignored by the container). NEO4J_AUTH is Neo4j's, shared through the env file.
fn settings_reading_every_variable(env: &BTreeMap<String, String>) -> Settings {
    let asked = RefCell::new(Vec::new());
    let settings = Settings::load_with_env(&Overrides::default(), |k| {
        asked.borrow_mut().push(k.to_owned());
        env.get(k).cloned()
    })
    .expect("the compose file's settings load");
    let main_rs = std::fs::read_to_string(root().join("src/main.rs")).expect("reads src/main.rs");
    for key in env.keys().filter(|k| k.as_str() != "NEO4J_AUTH") {
        let read_by_main = main_rs.contains(&format!("\"{key}\""));
        assert!(
            asked.borrow().contains(key) || read_by_main,
            "{key} is set in the stack but facegraph never reads it"
        );
    }
    settings
}

/// The listeners of a Kafka `NAME://HOST:PORT,...` list, as (name, host, port); the host is empty
/// for "every interface".
fn kafka_listeners(value: &str) -> Vec<(String, String, u16)> {
    value
        .split(',')
        .map(|l| {
            let (name, address) = l
                .split_once("://")
                .unwrap_or_else(|| panic!("listener {l:?} is not NAME://HOST:PORT"));
            let (host, port) = address
                .rsplit_once(':')
                .unwrap_or_else(|| panic!("listener {l:?} has no port"));
            let port = port
                .parse()
                .unwrap_or_else(|_| panic!("listener {l:?}: the port is not a number"));
            (name.to_owned(), host.to_owned(), port)
        })
        .collect()
}

/// A service's environment map, with numbers as their text.
fn environment(service: &Yaml, name: &str) -> BTreeMap<String, String> {
    service["environment"]
        .as_hash()
        .unwrap_or_else(|| panic!("{name}.environment should be a map"))
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Yaml::String(s) => s.clone(),
                Yaml::Integer(i) => i.to_string(),
                other => panic!("{name} environment value {other:?}"),
            };
            (str_of(k, "environment key").to_owned(), v)
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

    let example = env_file(&root().join("neo4j.env.example"));
    let env = container_env(&c, "facegraph");
    let settings = settings_reading_every_variable(&env);
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

#[test]
fn kafka_is_a_pinned_single_kraft_node_on_loopback_with_a_health_check() {
    let c = compose();
    let kafka = &c["services"]["kafka"];
    // The official image at a fixed release, so that every `docker compose up` runs the same broker.
    let image = str_of(&kafka["image"], "kafka.image");
    let tag = image
        .strip_prefix("apache/kafka:")
        .unwrap_or_else(|| panic!("{image} is not the official apache/kafka image"));
    let parts: Vec<&str> = tag.split('.').collect();
    assert!(
        parts.len() == 3 && parts.iter().all(|p| p.parse::<u32>().is_ok()),
        "{image}: pin a release X.Y.Z, not a moving tag"
    );

    // KRaft: the node is broker and controller, votes for itself through its controller listener,
    // and has a cluster id in the form kafka-storage formats with; there is no ZooKeeper.
    let env = environment(kafka, "kafka");
    assert!(
        !env.keys().any(|k| k.contains("ZOOKEEPER")),
        "KRaft mode needs no ZooKeeper: {env:?}"
    );
    let mut roles: Vec<&str> = env["KAFKA_PROCESS_ROLES"].split(',').collect();
    roles.sort_unstable();
    assert_eq!(roles, ["broker", "controller"]);
    let node_id = &env["KAFKA_NODE_ID"];
    let listeners = kafka_listeners(&env["KAFKA_LISTENERS"]);
    let controller_name = &env["KAFKA_CONTROLLER_LISTENER_NAMES"];
    let (_, _, controller_port) = listeners
        .iter()
        .find(|(name, _, _)| name == controller_name)
        .unwrap_or_else(|| panic!("no {controller_name} listener in {listeners:?}"));
    assert_eq!(
        env["KAFKA_CONTROLLER_QUORUM_VOTERS"],
        format!("{node_id}@kafka:{controller_port}"),
        "a single node votes for itself"
    );
    let cluster_id = &env["CLUSTER_ID"];
    assert!(
        cluster_id.len() == 22
            && cluster_id
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'),
        "CLUSTER_ID {cluster_id:?} is not 16 bytes in base64url"
    );
    // With one node, the internal topics must not ask for more replicas than there are brokers.
    assert_eq!(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"], "1");
    assert_eq!(env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"], "1");

    // Every listener but the controller's is advertised, each with the address its clients reach.
    let advertised = kafka_listeners(&env["KAFKA_ADVERTISED_LISTENERS"]);
    let protocols = &env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"];
    for (name, _, _) in &listeners {
        assert!(
            protocols
                .split(',')
                .any(|m| m.starts_with(&format!("{name}:"))),
            "listener {name} has no protocol in {protocols}"
        );
    }
    // Ports are published on the host's loopback only, and the published port is the one the
    // listener behind it advertises, so a client on the host is sent back to an address it reaches.
    let ports = list(&kafka["ports"], "kafka.ports");
    assert!(!ports.is_empty(), "the host reaches the broker");
    let mut host_listener = None;
    for p in &ports {
        let parts: Vec<&str> = p.split(':').collect();
        let [ip, host_port, container_port] = parts[..] else {
            panic!("kafka port {p:?} is not IP:HOST:CONTAINER");
        };
        assert_eq!(ip, "127.0.0.1", "{p}: loopback only");
        let container_port: u16 = container_port.parse().expect("a port");
        let (name, _, _) = listeners
            .iter()
            .find(|(_, _, port)| *port == container_port)
            .unwrap_or_else(|| panic!("{p}: no listener on {container_port}"));
        let (_, host, port) = advertised
            .iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("listener {name} is published but not advertised"));
        assert_eq!(host, "localhost", "{p}: the host's clients reach localhost");
        assert_eq!(
            port.to_string(),
            host_port,
            "{p}: advertised as the published port"
        );
        host_listener = Some(port);
    }
    assert_eq!(
        host_listener,
        Some(&9092),
        "the host's clients bootstrap on 9092"
    );

    // The health check sends a Kafka request to a listener the stack's containers use.
    let test = list(&kafka["healthcheck"]["test"], "kafka.healthcheck.test").join(" ");
    assert!(
        advertised
            .iter()
            .any(|(_, host, port)| host == "kafka" && test.contains(&format!("kafka:{port}"))),
        "{test} does not ask the broker at an address of the compose network"
    );
    assert!(
        test.contains("/opt/kafka/bin/"),
        "{test}: a Kafka client tool"
    );
    assert!(list(&kafka["volumes"], "kafka.volumes")
        .iter()
        .any(|v| v.ends_with(&format!(":{}", env["KAFKA_LOG_DIRS"]))));
}

#[test]
fn the_stream_starts_after_kafka_and_neo4j_are_healthy_and_names_the_broker() {
    let c = compose();
    let stream = &c["services"]["stream"];
    assert_eq!(list(&stream["command"], "stream.command")[0], "stream");
    assert_eq!(str_of(&stream["build"], "stream.build"), ".");
    for dependency in ["kafka", "neo4j"] {
        assert_eq!(
            str_of(
                &stream["depends_on"][dependency]["condition"],
                "stream.depends_on condition"
            ),
            "service_healthy",
            "the stream waits for {dependency}"
        );
    }

    // Its brokers are the kafka service's listener for the compose network: an address the broker
    // advertises under the service's name, so that the metadata clients get back stays reachable.
    let env = container_env(&c, "stream");
    let kafka_env = environment(&c["services"]["kafka"], "kafka");
    let listeners = kafka_listeners(&kafka_env["KAFKA_LISTENERS"]);
    let advertised = kafka_listeners(&kafka_env["KAFKA_ADVERTISED_LISTENERS"]);
    let brokers = env
        .get("FACEGRAPH_KAFKA_BROKERS")
        .expect("the stream names its brokers");
    for broker in brokers.split(',') {
        let (host, port) = broker.rsplit_once(':').expect("HOST:PORT");
        let port: u16 = port.parse().expect("a port");
        assert_eq!(host, "kafka", "{broker}: the kafka service");
        let (name, _, _) = advertised
            .iter()
            .find(|(_, h, p)| h == host && *p == port)
            .unwrap_or_else(|| panic!("{broker} is not an advertised listener: {advertised:?}"));
        assert!(
            listeners.iter().any(|(n, _, p)| n == name && *p == port),
            "{broker}: kafka listens there"
        );
    }

    // The stream's data directory (the local engine's collection) is its own: a data directory
    // has one writer, and the REST server holds facegraph-data.
    let volume_of = |service: &str| {
        list(
            &c["services"][service]["volumes"],
            &format!("{service}.volumes"),
        )
        .iter()
        .find(|v| v.ends_with(":/var/lib/facegraph"))
        .map(|v| v.split(':').next().unwrap_or_default().to_owned())
        .unwrap_or_else(|| panic!("{service} keeps its data directory in a volume"))
    };
    assert_ne!(volume_of("stream"), volume_of("facegraph"));

    // Every variable is one facegraph reads, and the store is Neo4j like the REST server's.
    let settings = settings_reading_every_variable(&env);
    let StoreLocation::Bolt(url) = &settings.store else {
        panic!(
            "the stream in the stack must use the Neo4j store, not {}",
            settings.store
        );
    };
    assert_eq!(
        Some(url.as_str()),
        container_env(&c, "facegraph")
            .get("FACEGRAPH_STORE")
            .map(String::as_str),
        "the stream and the REST server share one graph"
    );
}
