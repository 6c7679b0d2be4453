//! Three printers of one [`Diagnostic`]: people, tools and CI.

use std::fmt;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan};

use super::excerpt::Excerpt;
use super::{Diagnostic, Severity, SourceMap, Span};

/// Output format of diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// miette's graphical report, for terminals (`color` turns on ANSI styles).
    Human {
        /// Use colors and Unicode box drawing.
        color: bool,
    },
    /// One JSON object per line.
    Json,
    /// GitHub Actions workflow commands (`::error file=…`).
    Github,
}

/// Renders one diagnostic, ending with a newline.
pub fn render(diag: &Diagnostic, sources: &SourceMap, format: Format) -> String {
    match format {
        Format::Human { color } => human(diag, sources, color),
        Format::Json => json(diag, sources),
        Format::Github => github(diag, sources),
    }
}

/// Renders several diagnostics in order.
pub fn render_all(diags: &[Diagnostic], sources: &SourceMap, format: Format) -> String {
    diags.iter().map(|d| render(d, sources, format)).collect()
}

fn json(diag: &Diagnostic, sources: &SourceMap) -> String {
    let loc = sources.location(diag.span());
    let value = serde_json::json!({
        "file": loc.path.display().to_string(),
        "line": loc.line,
        "column": loc.column,
        "end_line": loc.end_line,
        "end_column": loc.end_column,
        "severity": diag.severity,
        "code": diag.code.id(),
        "message": diag.message,
        "help": diag.help,
        "notes": diag.notes,
    });
    format!("{value}\n")
}

fn github(diag: &Diagnostic, sources: &SourceMap) -> String {
    let loc = sources.location(diag.span());
    let kind = match diag.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut message = diag.message.clone();
    if let Some(help) = &diag.help {
        message.push_str("\nhelp: ");
        message.push_str(help);
    }
    for note in &diag.notes {
        message.push_str("\nnote: ");
        message.push_str(note);
    }
    format!(
        "::{kind} file={},line={},col={},endLine={},endColumn={},title={}::{}\n",
        escape_property(&loc.path.display().to_string()),
        loc.line,
        loc.column,
        loc.end_line,
        loc.end_column,
        escape_property(diag.code.id()),
        escape_data(&message),
    )
}

/// Escaping of a workflow command's message, as the GitHub runner decodes it.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escaping of a workflow command's property value.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

fn human(diag: &Diagnostic, sources: &SourceMap, color: bool) -> String {
    let report = Report::new(diag, sources);
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    if handler.render_report(&mut out, &report).is_err() {
        // The handler only fails on a broken fmt::Write; a String never is.
        out = format!("{}: {}\n", diag.code, diag.message);
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// A diagnostic bound to an excerpt of its source text, in the shape miette
/// renders. Labels in other files than the primary one (a base file named by
/// `extends`, say) become related reports, each with its own excerpt.
struct Report {
    message: String,
    code: &'static str,
    severity: miette::Severity,
    help: Option<String>,
    source: Excerpt,
    labels: Vec<LabeledSpan>,
    related: Vec<Report>,
}

impl Report {
    fn new(diag: &Diagnostic, sources: &SourceMap) -> Report {
        let primary = diag.span();
        let mut help = diag.help.clone();
        if !diag.notes.is_empty() {
            let notes = diag.notes.iter().map(|n| format!("note: {n}"));
            let mut text = help.map(|h| vec![h]).unwrap_or_default();
            text.extend(notes);
            help = Some(text.join("\n"));
        }
        let here: Vec<Span> = diag
            .labels
            .iter()
            .map(|l| l.span)
            .filter(|s| s.file == primary.file)
            .collect();
        let mut report = Report::bare(
            diag.message.clone(),
            diag.code.id(),
            diag.severity,
            help,
            &here,
            sources,
        );
        for (i, label) in diag.labels.iter().enumerate() {
            if label.span.file == primary.file {
                let range = report.source.map(label.span);
                report.labels.push(labeled(range, label.text.clone(), i == 0));
            } else {
                let text = label.text.clone().unwrap_or_default();
                let mut other = Report::bare(
                    text.clone(),
                    diag.code.id(),
                    Severity::Warning,
                    None,
                    &[label.span],
                    sources,
                );
                other.severity = miette::Severity::Advice;
                let range = other.source.map(label.span);
                other.labels.push(labeled(range, Some(text), true));
                report.related.push(other);
            }
        }
        report
    }

    /// A report without labels, over an excerpt around `spans` (of one file).
    fn bare(
        message: String,
        code: &'static str,
        severity: Severity,
        help: Option<String>,
        spans: &[Span],
        sources: &SourceMap,
    ) -> Report {
        let file = sources.file(spans[0].file);
        Report {
            message,
            code,
            severity: match severity {
                Severity::Error => miette::Severity::Error,
                Severity::Warning => miette::Severity::Warning,
            },
            help,
            source: Excerpt::new(file, spans),
            labels: Vec::new(),
            related: Vec::new(),
        }
    }
}

/// A label at `range` of the report's excerpt.
fn labeled(range: std::ops::Range<usize>, text: Option<String>, primary: bool) -> LabeledSpan {
    if primary {
        LabeledSpan::new_primary_with_span(text, range)
    } else {
        LabeledSpan::new_with_span(text, range)
    }
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().cloned()))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(self.related.iter().map(|r| r as &dyn miette::Diagnostic)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Code;

    fn sample() -> (Diagnostic, SourceMap) {
        let mut map = SourceMap::new();
        let id = map.add("jails/a,b.toml", "name = \"x\"\nhostnme = \"y\"\n");
        let start = map.file(id).text().find("hostnme").unwrap();
        let diag = Diagnostic::new(
            Code::UnknownKey,
            Span::new(id, start..start + 7),
            "unknown key `hostnme`",
        )
        .help("did you mean `hostname`?");
        (diag, map)
    }

    #[test]
    fn json_has_the_documented_fields() {
        let (diag, map) = sample();
        let out = render(&diag, &map, Format::Json);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["file"], "jails/a,b.toml");
        assert_eq!((v["line"].as_u64(), v["column"].as_u64()), (Some(2), Some(1)));
        assert_eq!(v["severity"], "error");
        assert_eq!(v["code"], "sysjail::key::unknown");
        assert_eq!(v["help"], "did you mean `hostname`?");
    }

    #[test]
    fn github_escapes_properties_and_data() {
        let (diag, map) = sample();
        let out = render(&diag, &map, Format::Github);
        assert_eq!(
            out,
            "::error file=jails/a%2Cb.toml,line=2,col=1,endLine=2,endColumn=8,\
             title=sysjail%3A%3Akey%3A%3Aunknown::unknown key `hostnme`%0Ahelp: did you mean `hostname`?\n"
        );
    }

    #[test]
    fn human_names_file_line_and_help() {
        let (diag, map) = sample();
        let out = render(&diag, &map, Format::Human { color: false });
        assert!(out.contains("jails/a,b.toml:2:1"), "{out}");
        assert!(out.contains("did you mean `hostname`?"), "{out}");
        assert!(out.contains("sysjail::key::unknown"), "{out}");
    }
}
