//! Per-example predictions in the formats the fields use, so anyone can recompute a metric with
//! the field's own tools.

use kiln_data::GlueTask;
use kiln_report::Source;

/// GLUE: one CSV per task and evaluation set, `idx,prediction,label`.
pub const GLUE_HEADER: [&str; 3] = ["idx", "prediction", "label"];

/// The source of a GLUE table cell: `metric` (`accuracy`, `f1`, `mcc`, `pearson`, `spearman`)
/// ×100 of each seed's prediction file in [`GLUE_HEADER`] format. `task` is the GLUE task name,
/// or a synthetic task's (numeric labels).
pub fn glue_source(task: &str, metric: &str, files: Vec<String>) -> Source {
    Source::new(format!("glue/{task}/{metric}"), files, 100.0)
}

/// True when every prediction is the same (a seed that collapsed to a constant predictor, which a
/// table must flag rather than average in silently). False for an empty slice.
pub fn is_constant<T: PartialEq>(predictions: &[T]) -> bool {
    predictions
        .first()
        .is_some_and(|p| predictions.iter().all(|x| x == p))
}

/// The predicted label of one model output: argmax over classes, or the score of a regression
/// head (one output).
pub fn predicted_label(output: &[f32]) -> f32 {
    if output.len() == 1 {
        return output[0];
    }
    output
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i as f32)
        .unwrap_or(f32::NAN)
}

/// GLUE prediction rows: `idx` is the example's row in the evaluation file (0-based, header
/// excluded); labels are written as GLUE writes them ([`GlueTask::label_text`]); `task` is
/// `None` for kiln's synthetic tasks (class numbers).
pub fn glue_rows(
    task: Option<GlueTask>,
    idx: &[usize],
    outputs: &[Vec<f32>],
    labels: &[f32],
) -> Vec<Vec<String>> {
    let text = |v: f32| match task {
        Some(t) => t.label_text(v),
        None => format!("{}", v.round() as i64),
    };
    idx.iter()
        .zip(outputs)
        .zip(labels)
        .map(|((i, o), &l)| vec![i.to_string(), text(predicted_label(o)), text(l)])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_in_glue_format() {
        let rows = glue_rows(
            Some(GlueTask::Rte),
            &[3, 7],
            &[vec![0.1, 0.9], vec![2.0, -1.0]],
            &[1.0, 1.0],
        );
        assert_eq!(rows[0], ["3", "not_entailment", "not_entailment"]);
        assert_eq!(rows[1], ["7", "entailment", "not_entailment"]);
        let r = glue_rows(Some(GlueTask::Stsb), &[0], &[vec![3.25]], &[4.0]);
        assert_eq!(r[0], ["0", "3.25", "4"]);
        let r = glue_rows(Some(GlueTask::Stsb), &[0], &[vec![3.123_456_7]], &[4.0]);
        assert_eq!(
            r[0][1].parse::<f32>().unwrap(),
            3.123_456_7,
            "full precision"
        );
        let r = glue_rows(None, &[0], &[vec![0.0, 1.0]], &[0.0]);
        assert_eq!(r[0], ["0", "1", "0"]);
    }
}
