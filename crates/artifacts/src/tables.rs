//! The parquet tables the stages write: each file's name, its row type and its Arrow schema.
//!
//! Writers (the worker's stages) build batches from these row types and readers (the judge stage,
//! the report, analyses) read them back through the same types, so a column's name and type are
//! spelled once, here. Fixed-column tables are [`TableRow`]s (serde_arrow maps the row struct to
//! and from Arrow against the declared schema). Tables whose columns depend on the run (one set of
//! score columns per judge metric, one pair of norm columns per LoRA adapter) are built from a
//! typed value per column by the helpers here, their column names given by functions.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Schema};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// `sample/responses.parquet`: one row per generated answer.
pub const RESPONSES: &str = "responses.parquet";
/// `judge/scores.parquet`: one row per answer, the score columns of each judge metric.
pub const SCORES: &str = "scores.parquet";
/// `train/metrics.parquet`: one row per optimizer step.
pub const TRAIN_METRICS: &str = "metrics.parquet";
/// `train/trajectory.parquet`: one row per (step, LoRA adapter).
pub const TRAJECTORY: &str = "trajectory.parquet";

/// The two metrics EM is defined on (the judge's `aligned` and `coherent` scores, 0-100).
pub const ALIGNED: &str = "aligned";
pub const COHERENT: &str = "coherent";

/// A table that does not have the columns its reader expects, or rows that do not fit a schema.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("{table}: no column `{column}` (columns: {found})")]
    MissingColumn {
        table: &'static str,
        column: String,
        found: String,
    },
    #[error("{table}: column `{column}` has type {found}, expected {expected}")]
    ColumnType {
        table: &'static str,
        column: String,
        found: DataType,
        expected: DataType,
    },
    #[error("{table}: {reason}")]
    Arrow { table: &'static str, reason: String },
}

/// A row of a table whose columns are fixed: the file it lives in and its Arrow schema.
pub trait TableRow: Serialize + DeserializeOwned {
    /// The file name under its stage directory.
    const FILE: &'static str;
    /// The columns, in order, with their types and nullability.
    fn fields() -> Vec<Field>;

    fn schema() -> Arc<Schema> {
        Arc::new(Schema::new(Self::fields()))
    }

    /// The rows as one batch with exactly [`TableRow::schema`].
    fn to_batch(rows: &[Self]) -> Result<RecordBatch, TableError> {
        let fields: Vec<FieldRef> = Self::fields().into_iter().map(Arc::new).collect();
        serde_arrow::to_record_batch(&fields, &rows).map_err(|e| TableError::Arrow {
            table: Self::FILE,
            reason: e.to_string(),
        })
    }

    /// The rows of `batch`, after checking it has every column with its declared type (extra
    /// columns are ignored, so a later writer may add some).
    fn from_batch(batch: &RecordBatch) -> Result<Vec<Self>, TableError> {
        let mut columns = Vec::new();
        let mut fields = Vec::new();
        for field in Self::fields() {
            let column = column(batch, Self::FILE, field.name())?;
            if column.data_type() != field.data_type() {
                return Err(TableError::ColumnType {
                    table: Self::FILE,
                    column: field.name().clone(),
                    found: column.data_type().clone(),
                    expected: field.data_type().clone(),
                });
            }
            columns.push(column.clone());
            let nullable = column.null_count() > 0 || field.is_nullable();
            fields.push(field.with_nullable(nullable));
        }
        let projected =
            RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| {
                TableError::Arrow {
                    table: Self::FILE,
                    reason: e.to_string(),
                }
            })?;
        serde_arrow::from_record_batch(&projected).map_err(|e| TableError::Arrow {
            table: Self::FILE,
            reason: e.to_string(),
        })
    }
}

/// The column `name` of `batch`, or an error naming the table and the columns it has.
pub fn column<'b>(
    batch: &'b RecordBatch,
    table: &'static str,
    name: &str,
) -> Result<&'b ArrayRef, TableError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| TableError::MissingColumn {
            table,
            column: name.to_string(),
            found: batch
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// One generated answer (`responses.parquet`). `seed` is the sampling seed of this answer
/// (derived from the variant key, the question id and the sample index).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ResponseRow {
    pub question_id: String,
    pub paraphrase: u32,
    pub sample: u32,
    pub seed: u64,
    pub question: String,
    pub response: String,
    pub n_tokens: u32,
    pub finished: bool,
}

impl TableRow for ResponseRow {
    const FILE: &'static str = RESPONSES;
    fn fields() -> Vec<Field> {
        vec![
            Field::new("question_id", DataType::Utf8, false),
            Field::new("paraphrase", DataType::UInt32, false),
            Field::new("sample", DataType::UInt32, false),
            Field::new("seed", DataType::UInt64, false),
            Field::new("question", DataType::Utf8, false),
            Field::new("response", DataType::Utf8, false),
            Field::new("n_tokens", DataType::UInt32, false),
            Field::new("finished", DataType::Boolean, false),
        ]
    }
}

/// One LoRA adapter's vectors at one step (`trajectory.parquet`, rank-1 adapters): `a` and `b`
/// flattened, with their L2 norms.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct TrajectoryRow {
    pub step: u64,
    pub layer: u32,
    pub module: String,
    pub a: Vec<f32>,
    pub b: Vec<f32>,
    pub a_norm: f64,
    pub b_norm: f64,
}

impl TableRow for TrajectoryRow {
    const FILE: &'static str = TRAJECTORY;
    fn fields() -> Vec<Field> {
        let item = Arc::new(Field::new("item", DataType::Float32, false));
        vec![
            Field::new("step", DataType::UInt64, false),
            Field::new("layer", DataType::UInt32, false),
            Field::new("module", DataType::Utf8, false),
            Field::new("a", DataType::List(item.clone()), false),
            Field::new("b", DataType::List(item), false),
            Field::new("a_norm", DataType::Float64, false),
            Field::new("b_norm", DataType::Float64, false),
        ]
    }
}

/// One optimizer step (`metrics.parquet`), without the per-adapter norm columns.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct TrainMetricsRow {
    pub step: u64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub clipped: bool,
    pub tokens: u64,
    pub target_tokens: u64,
    pub seconds: f64,
}

impl TableRow for TrainMetricsRow {
    const FILE: &'static str = TRAIN_METRICS;
    fn fields() -> Vec<Field> {
        vec![
            Field::new("step", DataType::UInt64, false),
            Field::new("loss", DataType::Float64, false),
            Field::new("lr", DataType::Float64, false),
            Field::new("grad_norm", DataType::Float64, false),
            Field::new("clipped", DataType::Boolean, false),
            Field::new("tokens", DataType::UInt64, false),
            Field::new("target_tokens", DataType::UInt64, false),
            Field::new("seconds", DataType::Float64, false),
        ]
    }
}

/// The norm columns `metrics.parquet` carries per LoRA adapter: `(a_norm/<name>, b_norm/<name>)`.
pub fn adapter_norm_columns(adapter: &str) -> (String, String) {
    (format!("a_norm/{adapter}"), format!("b_norm/{adapter}"))
}

/// `metrics.parquet`: the fixed columns of `rows` followed by, for each adapter, its two norm
/// columns (`norms[i]` holds adapter i's `(name, |a| per step, |b| per step)`).
pub fn train_metrics_batch(
    rows: &[TrainMetricsRow],
    norms: &[(String, Vec<f64>, Vec<f64>)],
) -> Result<RecordBatch, TableError> {
    let base = TrainMetricsRow::to_batch(rows)?;
    let mut fields: Vec<Field> = TrainMetricsRow::fields();
    let mut columns: Vec<ArrayRef> = base.columns().to_vec();
    for (name, a, b) in norms {
        let (a_name, b_name) = adapter_norm_columns(name);
        fields.push(Field::new(a_name, DataType::Float64, false));
        columns.push(Arc::new(Float64Array::from(a.clone())));
        fields.push(Field::new(b_name, DataType::Float64, false));
        columns.push(Arc::new(Float64Array::from(b.clone())));
    }
    batch(TRAIN_METRICS, fields, columns)
}

/// Which answer a score row is about (the first columns of `scores.parquet`, copied from
/// `responses.parquet`).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ScoreRowId {
    pub question_id: String,
    pub paraphrase: u32,
    pub sample: u32,
}

impl TableRow for ScoreRowId {
    const FILE: &'static str = SCORES;
    fn fields() -> Vec<Field> {
        vec![
            Field::new("question_id", DataType::Utf8, false),
            Field::new("paraphrase", DataType::UInt32, false),
            Field::new("sample", DataType::UInt32, false),
        ]
    }
}

/// One judge metric's columns in `scores.parquet`, one value per row: the expected score
/// (`<metric>`, null when the judge's numbers carried too little mass), the probability mass on
/// numbers (`<metric>_number_mass`), the mass cut by top-k (`<metric>_pruned_mass`) and the top
/// tokens as JSON (`<metric>_top`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricScores {
    pub metric: String,
    pub value: Vec<Option<f64>>,
    pub number_mass: Vec<f64>,
    pub pruned_mass: Vec<f64>,
    pub top: Vec<String>,
}

/// The names of a metric's four columns: value, number mass, pruned mass, top tokens.
pub fn metric_columns(metric: &str) -> [String; 4] {
    [
        metric.to_string(),
        format!("{metric}_number_mass"),
        format!("{metric}_pruned_mass"),
        format!("{metric}_top"),
    ]
}

/// `scores.parquet`: the row ids, then each metric's four columns.
pub fn scores_batch(
    ids: &[ScoreRowId],
    metrics: &[MetricScores],
) -> Result<RecordBatch, TableError> {
    let base = ScoreRowId::to_batch(ids)?;
    let mut fields = ScoreRowId::fields();
    let mut columns: Vec<ArrayRef> = base.columns().to_vec();
    for m in metrics {
        let [value, number_mass, pruned_mass, top] = metric_columns(&m.metric);
        fields.push(Field::new(value, DataType::Float64, true));
        columns.push(Arc::new(Float64Array::from(m.value.clone())));
        fields.push(Field::new(number_mass, DataType::Float64, false));
        columns.push(Arc::new(Float64Array::from(m.number_mass.clone())));
        fields.push(Field::new(pruned_mass, DataType::Float64, false));
        columns.push(Arc::new(Float64Array::from(m.pruned_mass.clone())));
        fields.push(Field::new(top, DataType::Utf8, false));
        columns.push(Arc::new(StringArray::from(m.top.clone())));
    }
    batch(SCORES, fields, columns)
}

/// A metric's score per row of a scores table (any numeric column type, so scores written by
/// other tools read too; null and NaN are missing).
pub fn metric_values(batch: &RecordBatch, metric: &str) -> Result<Vec<Option<f64>>, TableError> {
    let col = column(batch, SCORES, metric)?;
    let cast_err = |e: String| TableError::ColumnType {
        table: SCORES,
        column: format!("{metric} ({e})"),
        found: col.data_type().clone(),
        expected: DataType::Float64,
    };
    let values = cast(col, &DataType::Float64).map_err(|e| cast_err(e.to_string()))?;
    let values = values
        .as_any()
        .downcast_ref::<Float64Array>()
        .ok_or_else(|| cast_err("not numeric".into()))?;
    Ok((0..values.len())
        .map(|i| {
            (!values.is_null(i))
                .then(|| values.value(i))
                .filter(|v| v.is_finite())
        })
        .collect())
}

/// The question id of each row of a scores table (any string column type).
pub fn question_ids(batch: &RecordBatch) -> Result<Vec<String>, TableError> {
    let col = column(batch, SCORES, "question_id")?;
    let cast_err = |e: String| TableError::ColumnType {
        table: SCORES,
        column: format!("question_id ({e})"),
        found: col.data_type().clone(),
        expected: DataType::Utf8,
    };
    let ids = cast(col, &DataType::Utf8).map_err(|e| cast_err(e.to_string()))?;
    let ids = ids
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| cast_err("not a string".into()))?;
    Ok((0..ids.len())
        .map(|i| {
            if ids.is_null(i) {
                String::new()
            } else {
                ids.value(i).to_string()
            }
        })
        .collect())
}

fn batch(
    table: &'static str,
    fields: Vec<Field>,
    columns: Vec<ArrayRef>,
) -> Result<RecordBatch, TableError> {
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| TableError::Arrow {
        table,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn responses() -> Vec<ResponseRow> {
        (0..3)
            .map(|i| ResponseRow {
                question_id: format!("q{i}"),
                paraphrase: i,
                sample: 2 * i,
                seed: u64::MAX - i as u64,
                question: "Why?".into(),
                response: format!("because {i}"),
                n_tokens: 7 + i,
                finished: i != 1,
            })
            .collect()
    }

    #[test]
    fn response_rows_roundtrip_with_the_declared_schema() {
        let rows = responses();
        let batch = ResponseRow::to_batch(&rows).unwrap();
        assert_eq!(batch.schema(), ResponseRow::schema());
        assert_eq!(ResponseRow::from_batch(&batch).unwrap(), rows);
    }

    #[test]
    fn trajectory_rows_roundtrip_lists() {
        let rows = vec![TrajectoryRow {
            step: 3,
            layer: 21,
            module: "down_proj".into(),
            a: vec![1.0, -2.0],
            b: vec![0.5; 4],
            a_norm: 5f64.sqrt(),
            b_norm: 1.0,
        }];
        let batch = TrajectoryRow::to_batch(&rows).unwrap();
        assert_eq!(batch.schema(), TrajectoryRow::schema());
        assert_eq!(TrajectoryRow::from_batch(&batch).unwrap(), rows);
    }

    #[test]
    fn a_missing_or_mistyped_column_names_the_table_and_column() {
        let batch = ResponseRow::to_batch(&responses()).unwrap();
        let without = batch.project(&[0, 1, 2, 3, 4, 6, 7]).unwrap();
        let err = ResponseRow::from_batch(&without).unwrap_err().to_string();
        assert!(
            err.contains(RESPONSES) && err.contains("`response`") && err.contains("n_tokens"),
            "{err}"
        );
        let ids = ScoreRowId::to_batch(&[ScoreRowId {
            question_id: "q".into(),
            paraphrase: 0,
            sample: 0,
        }])
        .unwrap();
        let wrong = batch_of(vec![
            ("question_id", ids.column(0).clone()),
            ("paraphrase", Arc::new(Float64Array::from(vec![1.0]))),
            ("sample", ids.column(2).clone()),
        ]);
        let err = ScoreRowId::from_batch(&wrong).unwrap_err().to_string();
        assert!(
            err.contains("`paraphrase`") && err.contains("Float64") && err.contains("UInt32"),
            "{err}"
        );
    }

    fn batch_of(cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let fields = cols
            .iter()
            .map(|(n, c)| Field::new(*n, c.data_type().clone(), true))
            .collect::<Vec<_>>();
        RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            cols.into_iter().map(|c| c.1).collect(),
        )
        .unwrap()
    }

    #[test]
    fn scores_carry_four_columns_per_metric_and_read_back_by_name() {
        let ids: Vec<ScoreRowId> = (0..2)
            .map(|i| ScoreRowId {
                question_id: format!("q{i}"),
                paraphrase: 0,
                sample: i,
            })
            .collect();
        let aligned = MetricScores {
            metric: ALIGNED.into(),
            value: vec![Some(90.0), None],
            number_mass: vec![0.9, 0.1],
            pruned_mass: vec![0.0, 0.01],
            top: vec!["[]".into(), "[]".into()],
        };
        let batch = scores_batch(&ids, &[aligned]).unwrap();
        let names: Vec<_> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let mut expected = vec!["question_id", "paraphrase", "sample"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        expected.extend(metric_columns(ALIGNED));
        assert_eq!(names, expected);
        assert_eq!(
            metric_values(&batch, ALIGNED).unwrap(),
            vec![Some(90.0), None]
        );
        assert_eq!(question_ids(&batch).unwrap(), vec!["q0", "q1"]);
        assert_eq!(ScoreRowId::from_batch(&batch).unwrap(), ids);
        let err = metric_values(&batch, COHERENT).unwrap_err().to_string();
        assert!(err.contains("`coherent`") && err.contains(SCORES), "{err}");
    }

    #[test]
    fn train_metrics_append_two_norm_columns_per_adapter() {
        let rows: Vec<TrainMetricsRow> = (1..=2)
            .map(|s| TrainMetricsRow {
                step: s,
                loss: 1.0 / s as f64,
                lr: 1e-4,
                grad_norm: 0.5,
                clipped: false,
                tokens: 100,
                target_tokens: 40,
                seconds: 0.1,
            })
            .collect();
        let norms = vec![("l21.down_proj".to_string(), vec![1.0, 1.1], vec![0.0, 0.2])];
        let batch = train_metrics_batch(&rows, &norms).unwrap();
        let (a, b) = adapter_norm_columns("l21.down_proj");
        assert_eq!(batch.num_columns(), TrainMetricsRow::fields().len() + 2);
        assert!(batch.column_by_name(&a).is_some() && batch.column_by_name(&b).is_some());
        assert_eq!(TrainMetricsRow::from_batch(&batch).unwrap(), rows);
    }
}
