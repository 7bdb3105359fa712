//! Configs: RON round trip, named errors for bad values, determinism given the seed.

use wlm_data::Snapshots;
use wlm_flow::{Error, FlowConfig, FlowTrainer, PathKind};
use wlm_numeric::SeedRng;

fn parse(text: &str) -> FlowConfig {
    ron::from_str(text).unwrap()
}

#[test]
fn ron_configs_round_trip_and_bad_values_name_their_field() {
    let config = FlowConfig {
        path: PathKind::Harmonic { omega: 1.0 },
        ..FlowConfig::default()
    };
    let text = ron::to_string(&config).unwrap();
    assert_eq!(parse(&text), config);
    let cases = [
        ("(path: Harmonic(omega: 3.2))", "flow.path.omega"),
        ("(path: Harmonic(omega: -0.5))", "flow.path.omega"),
        (
            "(path: Anisotropic(omega_base: 1.0, omega_ratio: 3.5))",
            "flow.path.omega_ratio",
        ),
        ("(sigma: -0.1)", "flow.sigma"),
        ("(train: (batch_size: 0))", "flow.train.batch_size"),
        ("(train: (steps: 0))", "flow.train.steps"),
        ("(train: (weight_decay: -1.0))", "flow.train.weight_decay"),
        (
            "(network: (hidden_layers: 0))",
            "flow.network.hidden_layers",
        ),
    ];
    for (text, field) in cases {
        match parse(text).validate() {
            Err(Error::Config { field: f, message }) => {
                assert_eq!(f, field, "{text}");
                assert!(!message.is_empty());
            }
            other => panic!("{text}: expected a config error for {field}, got {other:?}"),
        }
    }
    // Unknown fields are rejected by the parser.
    assert!(ron::from_str::<FlowConfig>("(omega: 1.0)").is_err());
}

fn three_snapshots(seed: u64) -> Snapshots {
    let mut rng = SeedRng::seed_from(seed);
    let positions = (0..3)
        .map(|k| (0..60).map(|_| rng.normal() + k as f64).collect())
        .collect();
    Snapshots::new(vec![0.0, 0.5, 1.5], 2, positions, None).unwrap()
}

fn train_weights(config: &FlowConfig, snapshots: &Snapshots) -> (Vec<f64>, Vec<Vec<f32>>) {
    let mut trainer = FlowTrainer::new(config, snapshots, &[0, 1, 2]).unwrap();
    let mut losses = Vec::new();
    trainer.train(&mut |_, loss| losses.push(loss)).unwrap();
    let model = trainer.finish().unwrap();
    let mut weights: Vec<_> = model.weights().unwrap().into_iter().collect();
    weights.sort_by(|a, b| a.0.cmp(&b.0));
    let values = weights
        .into_iter()
        .map(|(_, t)| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
        .collect();
    (losses, values)
}

#[test]
fn training_is_deterministic_given_the_seed() {
    let snapshots = three_snapshots(1);
    let mut config = FlowConfig::default();
    config.train.steps = 15;
    config.train.batch_size = 16;
    for path in [
        PathKind::Linear,
        PathKind::Anisotropic {
            omega_base: 0.8,
            omega_ratio: 2.0,
        },
    ] {
        config.path = path;
        let a = train_weights(&config, &snapshots);
        let b = train_weights(&config, &snapshots);
        assert_eq!(a, b);
        let mut other = config.clone();
        other.train.seed = 1;
        let c = train_weights(&other, &snapshots);
        assert_ne!(a.0, c.0);
        assert_ne!(a.1, c.1);
    }
}

#[test]
fn data_errors_are_errors() {
    let snapshots = three_snapshots(2);
    let config = FlowConfig::default();
    for train in [&[0][..], &[0, 5], &[2, 1]] {
        assert!(matches!(
            FlowTrainer::new(&config, &snapshots, train),
            Err(Error::Data(_))
        ));
    }
}

#[test]
fn saved_weights_load_into_a_fresh_model_and_predict_the_same() {
    let snapshots = three_snapshots(3);
    let mut config = FlowConfig::default();
    config.train.steps = 5;
    config.train.batch_size = 8;
    let mut trainer = FlowTrainer::new(&config, &snapshots, &[0, 2]).unwrap();
    trainer.train(&mut |_, _| {}).unwrap();
    let model = trainer.finish().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flow.safetensors");
    model.save(&file).unwrap();
    let mut other = config.clone();
    other.train.seed = 7;
    let fresh = wlm_flow::FlowModel::new(&other, &snapshots, &[0, 2]).unwrap();
    let before = fresh.predict(snapshots.positions(0), 0.0, 0.5).unwrap();
    fresh.load(&file).unwrap();
    let (a, b) = (
        model.predict(snapshots.positions(0), 0.0, 0.5).unwrap(),
        fresh.predict(snapshots.positions(0), 0.0, 0.5).unwrap(),
    );
    assert_eq!(a, b);
    assert_ne!(before, b);
    assert!(matches!(
        fresh.load(&dir.path().join("missing.safetensors")),
        Err(Error::File { .. })
    ));
}
