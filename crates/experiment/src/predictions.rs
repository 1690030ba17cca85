//! Per-example predictions in the formats the fields use, so anyone can recompute a metric with
//! the field's own tools.

use kiln_data::GlueTask;

/// GLUE: one CSV per task and evaluation set, `idx,prediction,label`.
pub const GLUE_HEADER: [&str; 3] = ["idx", "prediction", "label"];

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
        assert_eq!(r[0], ["0", "3.250", "4.000"]);
        let r = glue_rows(None, &[0], &[vec![0.0, 1.0]], &[0.0]);
        assert_eq!(r[0], ["0", "1", "0"]);
    }
}
