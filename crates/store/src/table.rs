//! Parquet I/O for the small tables the project writes (metrics, responses, scores, matrices).
//!
//! Tables are written whole into memory with zstd compression and read back whole from bytes
//! (`ParquetRecordBatchReaderBuilder::try_new(bytes)`), so this module needs neither parquet's
//! `object_store` feature nor its deprecated `ParquetObjectWriter`. Use [`crate::Store::put_table`]
//! and [`crate::Store::get_table`] to get errors that name the key.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::{Result, StoreError};

fn table_err(context: &str, source: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Table {
        context: context.to_string(),
        source: Box::new(source),
    }
}

/// Encodes one batch as a zstd-compressed parquet file.
pub fn to_parquet(batch: &RecordBatch) -> Result<Vec<u8>> {
    to_parquet_batches(batch.schema(), std::slice::from_ref(batch))
}

/// Encodes several batches sharing `schema` as one parquet file (zero batches gives a file with
/// the schema and no rows).
pub fn to_parquet_batches(schema: Arc<Schema>, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, schema, Some(props))
        .map_err(|e| table_err("creating parquet writer", e))?;
    for batch in batches {
        writer
            .write(batch)
            .map_err(|e| table_err("writing parquet batch", e))?;
    }
    writer
        .close()
        .map_err(|e| table_err("finishing parquet file", e))?;
    Ok(buf)
}

/// Decodes a whole parquet file into one batch (the file's batches concatenated). A file with no
/// rows gives an empty batch that still carries the schema.
pub fn from_parquet(bytes: Bytes) -> Result<RecordBatch> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| table_err("opening parquet file", e))?;
    let schema = builder.schema().clone();
    let reader = builder
        .build()
        .map_err(|e| table_err("reading parquet file", e))?;
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| table_err("decoding parquet batch", e))?;
    match batches.len() {
        0 => Ok(RecordBatch::new_empty(schema)),
        1 => Ok(batches.into_iter().next().expect("one batch")),
        _ => arrow::compute::concat_batches(&schema, &batches)
            .map_err(|e| table_err("concatenating parquet batches", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Float64Array, StringArray, UInt32Array};
    use arrow::datatypes::{DataType, Field};

    fn sample() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("question_id", DataType::Utf8, false),
            Field::new("sample", DataType::UInt32, false),
            Field::new("aligned", DataType::Float64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["q1", "q2", "q3"])),
                Arc::new(UInt32Array::from(vec![0, 1, 2])),
                Arc::new(Float64Array::from(vec![Some(12.5), None, Some(99.0)])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn roundtrip_keeps_types_values_and_nulls() {
        let batch = sample();
        let bytes = to_parquet(&batch).unwrap();
        assert_eq!(&bytes[..4], b"PAR1");
        let back = from_parquet(Bytes::from(bytes)).unwrap();
        assert_eq!(back.schema(), batch.schema());
        assert_eq!(back, batch);
        let aligned = back
            .column(2)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert!(aligned.is_null(1));
        assert_eq!(aligned.value(2), 99.0);
    }

    #[test]
    fn many_batches_concatenate_and_empty_keeps_schema() {
        let batch = sample();
        let bytes = to_parquet_batches(batch.schema(), &[batch.clone(), batch.clone()]).unwrap();
        let back = from_parquet(Bytes::from(bytes)).unwrap();
        assert_eq!(back.num_rows(), 6);

        let empty = to_parquet_batches(batch.schema(), &[]).unwrap();
        let back = from_parquet(Bytes::from(empty)).unwrap();
        assert_eq!(back.num_rows(), 0);
        assert_eq!(back.schema(), batch.schema());
    }

    #[test]
    fn garbage_is_a_table_error() {
        let err = from_parquet(Bytes::from_static(b"not parquet")).unwrap_err();
        assert!(matches!(err, StoreError::Table { .. }), "{err}");
    }
}
