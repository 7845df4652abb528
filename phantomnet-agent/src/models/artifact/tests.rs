use super::*;
use crate::features::FEATURE_COUNT;
use crate::models::forest::{fit_smartcore, tests::synthetic};

#[test]
fn load_reads_only_bounded_regular_files() {
    let err = Model::load_bounded(Path::new("/dev/zero"), 1 << 20).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.pnm");
    let m = small_model(5);
    m.save(&path).unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(Model::load_bounded(&path, len).is_ok());
    let err = Model::load_bounded(&path, len - 1).unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
}

/// A small trained model (20 trees, schema v2) for tests elsewhere in
/// the crate.
pub(crate) fn small_model(seed: u64) -> Model {
    small_model_of(Schema::V2, seed)
}

/// A small trained model of `schema`.
pub(crate) fn small_model_of(schema: Schema, seed: u64) -> Model {
    let (rows, labels) = synthetic(400, seed);
    let width = schema.count();
    let scaler = StandardScaler::fit(&rows, width);
    let scaled: Vec<[f64; FEATURE_COUNT]> = rows.iter().map(|r| scaler.transformed(r)).collect();
    let params = ModelParams::small(seed, 0.2);
    let parts = fit_smartcore(&scaled, width, &labels, &params.forest, &|_| {}).unwrap();
    let forest = CompactForest::from_smartcore(&parts).unwrap();
    let isolation = IsolationForest::fit(&scaled, width, &params.isolation).unwrap();
    let meta = Model::meta(
        schema,
        params,
        "00".repeat(32),
        rows.len(),
        serde_json::json!({"test": {"f1": 0.9}}),
        "2026-01-01T00:00:00Z".into(),
    );
    Model::new(meta, scaler, forest, isolation).unwrap()
}

#[test]
fn saved_and_loaded_model_gives_identical_scores() {
    let model = small_model(11);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.pnm");
    model.save(&path).unwrap();
    let back = Model::load(&path).unwrap();
    assert_eq!(back, model);
    let (rows, _) = synthetic(200, 99);
    for r in &rows {
        let fv = FeatureVector::new(*r).unwrap();
        let (a, b) = (model.score(&fv), back.score(&fv));
        assert_eq!(a.prediction, b.prediction);
        assert_eq!(
            a.attack_probability.to_bits(),
            b.attack_probability.to_bits()
        );
        assert_eq!(a.anomaly.to_bits(), b.anomaly.to_bits());
    }
}

#[test]
fn wrong_schema_truncated_and_foreign_files_are_refused_clearly() {
    let model = small_model(12);
    let bytes = model.to_bytes().unwrap();

    // Not a model at all.
    let err = Model::from_bytes(b"{\"hello\": 1}").unwrap_err();
    assert!(matches!(err, ModelError::NotAModel), "{err}");
    assert!(err.to_string().contains("not a PhantomNet model"));
    assert!(matches!(Model::from_bytes(b""), Err(ModelError::NotAModel)));

    // Truncated anywhere: header, metadata, body.
    for cut in [20, 100, bytes.len() / 2, bytes.len() - 1] {
        let err = Model::from_bytes(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(err, ModelError::Truncated { .. }),
            "cut {cut}: {err}"
        );
        assert!(err.to_string().contains("truncated"));
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        Model::from_bytes(&longer),
        Err(ModelError::TrailingBytes { extra: 1 })
    ));

    // A flipped bit in the body.
    let mut flipped = bytes.clone();
    let last = flipped.len() - 10;
    flipped[last] ^= 0x40;
    assert!(matches!(
        Model::from_bytes(&flipped),
        Err(ModelError::Checksum)
    ));

    // An unknown schema version, or renamed features.
    let mut other = model.clone();
    other.meta.schema_version = 8;
    let err = Model::from_bytes(&other.to_bytes().unwrap()).unwrap_err();
    assert!(matches!(err, ModelError::Schema(_)), "{err}");
    assert!(err.to_string().contains("version 8"), "{err}");
    let mut renamed = model.clone();
    renamed.meta.feature_names[13] = "fin_ratio".into();
    let err = Model::from_bytes(&renamed.to_bytes().unwrap()).unwrap_err();
    assert!(err.to_string().contains("fin_ratio"), "{err}");

    // A future format version.
    let mut future = bytes.clone();
    future[8] = 9;
    assert!(matches!(
        Model::from_bytes(&future),
        Err(ModelError::UnsupportedFormat { found: 9 })
    ));
}

/// The model a v2 artifact would be if its metadata listed `names`.
fn with_names(model: &Model, names: Vec<String>) -> Result<Model, ModelError> {
    let mut m = model.clone();
    m.meta.feature_names = names;
    Model::from_bytes(&m.to_bytes().unwrap())
}

#[test]
fn a_v2_artifact_with_a_wrong_feature_list_is_refused_naming_the_difference() {
    let model = small_model_of(Schema::V2, 14);
    let names: Vec<String> = model.meta.feature_names.clone();
    assert_eq!(names.len(), 22);
    assert_eq!(with_names(&model, names.clone()).unwrap(), model);

    // Two v2 features swapped: the first position that differs.
    let mut swapped = names.clone();
    swapped.swap(18, 19);
    let err = with_names(&model, swapped).unwrap_err();
    assert!(matches!(err, ModelError::Schema(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "model was trained on a different feature schema: feature 18 is named \
         \"ack_only_share\", schema v2 expects \"payload_share\""
    );
    // Renamed.
    let mut renamed = names.clone();
    renamed[21] = "fin_ratio".into();
    let err = with_names(&model, renamed).unwrap_err();
    assert!(
        err.to_string()
            .contains("feature 21 is named \"fin_ratio\""),
        "{err}"
    );
    assert!(err.to_string().contains("expects \"fin_share\""), "{err}");
    // One missing: named, with the count.
    let err = with_names(&model, names[..21].to_vec()).unwrap_err();
    assert!(
        err.to_string()
            .contains("21 feature names recorded, schema v2 has 22: missing feature \"fin_share\""),
        "{err}"
    );
    // v1's list under version 2.
    let err = with_names(&model, names[..15].to_vec()).unwrap_err();
    assert!(
        err.to_string()
            .contains("missing feature \"new_conn_rate\""),
        "{err}"
    );
    // One too many.
    let mut longer = names.clone();
    longer.push("src_port_switch_share".into());
    let err = with_names(&model, longer).unwrap_err();
    assert!(
        err.to_string()
            .contains("unexpected feature \"src_port_switch_share\""),
        "{err}"
    );
    // A v1 artifact whose forest reads a v2 feature is refused too.
    let mut v1 = model.clone();
    v1.meta.schema_version = 1;
    v1.meta.feature_names.truncate(15);
    let err = Model::from_bytes(&v1.to_bytes().unwrap()).unwrap_err();
    assert!(err.to_string().contains("scaler has 22 means"), "{err}");
}

/// `bytes` with its metadata replaced by `meta` and a fresh checksum.
fn with_meta(bytes: &[u8], meta: &[u8]) -> Vec<u8> {
    let old_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let body = &bytes[HEADER_LEN + old_len..];
    let mut hash = Sha256::new();
    hash.update(meta);
    hash.update(body);
    let mut out = bytes[..12].to_vec();
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&bytes[16..24]);
    out.extend_from_slice(&hash.finalize());
    out.extend_from_slice(meta);
    out.extend_from_slice(body);
    out
}

#[test]
fn scores_priority_round_trips_defaults_to_false_and_a_bad_value_is_refused() {
    let mut model = small_model(16);
    model.meta.scores_priority = true;
    let bytes = model.to_bytes().unwrap();
    assert!(Model::from_bytes(&bytes).unwrap().meta.scores_priority);
    let meta = |m: &Model| serde_json::to_value(&m.meta).unwrap();
    // An artifact written before the field existed: false.
    let mut old = meta(&model);
    old.as_object_mut().unwrap().remove("scores_priority");
    let back = Model::from_bytes(&with_meta(&bytes, &serde_json::to_vec(&old).unwrap()));
    assert!(!back.unwrap().meta.scores_priority);
    // Not a boolean: refused as bad metadata (serde says what it found).
    let mut bad = meta(&model);
    bad["scores_priority"] = serde_json::json!("yes");
    let err =
        Model::from_bytes(&with_meta(&bytes, &serde_json::to_vec(&bad).unwrap())).unwrap_err();
    assert!(matches!(err, ModelError::Meta(_)), "{err}");
    assert!(err.to_string().contains("invalid type"), "{err}");
}

#[test]
fn a_v1_model_still_loads_and_scores_the_first_15_features() {
    // The v1 model shipped until the second revision of 2026-12-06,
    // kept as a fixture, and a freshly trained small one.
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/model-schema-v1.pnm");
    let mut models = vec![small_model_of(Schema::V1, 15)];
    models.push(Model::load(&fixture).unwrap());
    let (rows, _) = synthetic(200, 7);
    for model in &models {
        assert_eq!(model.schema().unwrap(), Schema::V1);
        assert_eq!(model.meta.feature_names.len(), 15);
        let back = Model::from_bytes(&model.to_bytes().unwrap()).unwrap();
        assert_eq!(&back, model);
        let mut attacks = 0;
        for r in rows.iter().chain(&lab_like_rows()) {
            let fv = FeatureVector::new(*r).unwrap();
            let s = model.score(&fv);
            attacks += s.prediction as usize;
            // The v2 features change nothing for a v1 model.
            let mut other = *r;
            other[15..].iter_mut().for_each(|v| *v = *v * 3.0 + 1e6);
            let t = model.score(&FeatureVector::new(other).unwrap());
            assert_eq!(s, t);
            // Nor does a v1-only vector (v2 features 0).
            let v1 = FeatureVector::from_slice(&r[..15]).unwrap();
            assert_eq!(model.score(&v1), s);
        }
        assert!(attacks > 0 && attacks < rows.len() + 2, "{attacks}");
    }
}

#[test]
fn the_shipped_model_is_schema_v7_and_reads_every_feature() {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/model-v1.pnm");
    let model = Model::load(&shipped).unwrap();
    // The sixth revision (MODEL.md) adopted schema v7.
    assert_eq!(model.schema().unwrap(), Schema::V7);
    assert_eq!(model.meta.feature_names, Schema::V7.names());
    // signature_hits, server_refusals, server_answers, server_errors and
    // the census are among its inputs: some lab-like row's score moves
    // when only that feature does.
    let moves = |index: usize, value: f64| {
        lab_like_rows().iter().any(|r| {
            let mut hit = *r;
            hit[index] = value;
            model.score(&FeatureVector::new(*r).unwrap())
                != model.score(&FeatureVector::new(hit).unwrap())
        })
    };
    use crate::features::index::{
        EST_CONN_RATE, EST_PACKET_RATE, EST_PACKETS_PER_CONN, SERVER_ANSWERS, SERVER_ERRORS,
        SERVER_REFUSALS, SIGNATURE_HITS,
    };
    assert!(
        moves(SIGNATURE_HITS, 40.0),
        "no score depends on signature_hits"
    );
    assert!(
        moves(SERVER_REFUSALS, 200.0),
        "no score depends on server_refusals"
    );
    assert!(
        moves(SERVER_ANSWERS, 200.0),
        "no score depends on server_answers"
    );
    assert!(
        moves(SERVER_ERRORS, 60.0),
        "no score depends on server_errors"
    );
    for (index, value, name) in [
        (EST_PACKET_RATE, 0.05, "est_packet_rate"),
        (EST_CONN_RATE, 50.0, "est_conn_rate"),
        (EST_PACKETS_PER_CONN, 500.0, "est_packets_per_conn"),
    ] {
        assert!(moves(index, value), "no score depends on {name}");
    }
}

/// A SYN flood's row and a browser's, as the lab's v1 features and the
/// census see them.
fn lab_like_rows() -> Vec<[f64; FEATURE_COUNT]> {
    use crate::features::index::EST_PACKET_RATE;
    let mut flood = [0.0; FEATURE_COUNT];
    flood[..15].copy_from_slice(&[
        54.0, 1.0, 1.0, 1.0, 370.0, 370.0, 0.0027, 0.001, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 64.0,
    ]);
    flood[EST_PACKET_RATE..].copy_from_slice(&[370.0, 370.0, 1.0]);
    let mut browser = [0.0; FEATURE_COUNT];
    browser[..15].copy_from_slice(&[
        400.0, 1.0, 1.0, 1.0, 2.0, 3.0, 0.4, 0.5, 90000.0, 5.0, 1.0, 1.0, 340.0, 0.1, 64.0,
    ]);
    browser[EST_PACKET_RATE..].copy_from_slice(&[2.0, 0.2, 10.0]);
    vec![flood, browser]
}

#[test]
fn a_corrupt_forest_with_a_valid_checksum_is_refused_not_run() {
    let model = small_model(13);
    // Re-encode with a node pointing outside the forest and a fresh checksum.
    let mut nodes = model.forest.nodes().to_vec();
    let i = nodes
        .iter()
        .position(|n| n.feature != forest::LEAF)
        .unwrap();
    nodes[i].left = nodes.len() as u32 + 5;
    let body = postcard::to_allocvec(&(
        &model.scaler,
        (model.forest.roots(), &nodes),
        &model.isolation,
    ))
    .unwrap();
    let meta = serde_json::to_vec(&model.meta).unwrap();
    let mut h = Sha256::new();
    h.update(&meta);
    h.update(&body);
    let mut bytes = ARTIFACT_MAGIC.to_vec();
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&h.finalize());
    bytes.extend_from_slice(&meta);
    bytes.extend_from_slice(&body);
    let err = Model::from_bytes(&bytes).unwrap_err();
    assert!(matches!(err, ModelError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("out of bounds"), "{err}");
}

use crate::models::forest;
