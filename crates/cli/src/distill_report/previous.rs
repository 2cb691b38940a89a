//! The report already at the output paths: a dataset whose runs are absent keeps its section
//! from it, word for word (its runs may live on another machine).

use serde_json::Value;

use super::ReportPaths;
use super::collect::read_json;
use super::render::Section;

/// The previous JSON and Markdown reports (either may be missing).
#[derive(Debug)]
pub struct Previous {
    json: Option<Value>,
    markdown: String,
}

impl Previous {
    pub fn read(out: &ReportPaths) -> Self {
        Self {
            json: read_json(&out.json).ok(),
            markdown: std::fs::read_to_string(&out.markdown).unwrap_or_default(),
        }
    }

    /// A top-level value of the previous JSON report.
    pub fn extra(&self, key: &str) -> Option<Value> {
        self.json.as_ref()?.get(key).cloned()
    }

    /// `dataset`'s JSON and its Markdown section (from its `## <dataset>` heading to the next
    /// `## ` heading), with the byte counts the headline sizes are taken from.
    pub fn section(&self, dataset: &str) -> Option<Section> {
        let json = self.json.as_ref()?.get("datasets")?.get(dataset)?.clone();
        let heading = format!("## {dataset}\n");
        let start = self.markdown.find(&heading)?;
        let rest = &self.markdown[start + heading.len()..];
        let end = rest.find("\n## ").map_or(self.markdown.len(), |i| start + heading.len() + i + 1);
        let bytes = |run: &str, key: &str| json["runs"][run][key].as_u64();
        Some(Section {
            student_bytes: bytes("student", "browser_weight_bytes")?,
            teacher_bytes: bytes("teacher", "full_weight_bytes")?,
            markdown: self.markdown[start..end].to_string(),
            json,
        })
    }
}
