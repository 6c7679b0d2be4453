//! What the human renderer is shown of a file: the lines around a diagnostic's
//! labels, each cut to a window of columns around its label.
//!
//! miette reads its source text from the start for every label, and pads to a
//! label's column with a format width that cannot pass 65,535. Given a whole
//! file, one diagnostic costs the size of the file and a label far along one
//! long line panics. An excerpt holds a few short rows instead, so that
//! rendering costs the size of the diagnostic, and it reports the lines and
//! columns of the real file, so that the header `file:line:col` stays true.

use std::collections::BTreeSet;
use std::ops::Range;

use miette::{MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

use super::{SourceFile, Span};

/// Bytes of a line shown around a label, at most.
const WIDTH: usize = 160;
/// Bytes shown before a label on a line that is cut.
const BEFORE: usize = 48;
/// Lines of a label spanning several that are shown.
const SPAN_LINES: usize = 6;
/// A gap of this many lines or fewer between the rows of two labels is shown,
/// so that they share one snippet as they would in the whole file.
const FILL: usize = 3;
/// Marks the text cut from a row.
const CUT: &str = "…";

/// One line of the file, as far as it is shown.
#[derive(Debug)]
struct Row {
    /// Offset of the row in the excerpt's text.
    at: usize,
    /// 0-based line in the file.
    line: usize,
    /// Bytes of the marker before the shown text.
    lead: usize,
    /// The bytes of the file shown.
    shown: Range<usize>,
    /// 0-based column (in characters) of the first byte shown.
    column: usize,
}

/// A few rows of one file, in the shape miette reads.
#[derive(Debug)]
pub(super) struct Excerpt {
    name: String,
    text: String,
    rows: Vec<Row>,
}

impl Excerpt {
    /// The rows of `file` around `spans` (the primary one first: a cut line is
    /// cut around the first span that starts on it).
    pub(super) fn new(file: &SourceFile, spans: &[Span]) -> Excerpt {
        let text = file.text();
        // A newline ends the file's last line: the empty "line" after it is
        // shown only if a label is on it.
        let last = file.lines() - 1 - usize::from(file.lines() > 1 && text.ends_with('\n'));
        let mut lines = BTreeSet::new();
        let mut anchors: Vec<(usize, usize)> = Vec::new();
        for span in spans {
            let (first, end) = lines_of(file, *span);
            lines.extend(first.saturating_sub(1)..=first.max((end + 1).min(last)));
            lines.extend(first..=end);
            if !anchors.iter().any(|&(l, _)| l == first) {
                anchors.push((first, span.start as usize));
            }
        }
        fill_gaps(&mut lines);
        let default = anchors
            .first()
            .map_or(0, |&(line, at)| at - file.line_range(line).start);
        let mut excerpt = Excerpt {
            name: file.path().display().to_string(),
            text: String::new(),
            rows: Vec::with_capacity(lines.len()),
        };
        for line in lines {
            let range = file.line_range(line);
            let anchor = anchors
                .iter()
                .find(|&&(l, _)| l == line)
                .map_or(range.start + default, |&(_, at)| at);
            excerpt.push_row(text, line, range, anchor);
        }
        excerpt
    }

    fn push_row(&mut self, text: &str, line: usize, range: Range<usize>, anchor: usize) {
        let shown = if range.len() <= WIDTH {
            range.clone()
        } else {
            // Around the label, or the line's last bytes if it ends sooner.
            let from = anchor.saturating_sub(BEFORE).min(range.end - WIDTH).max(range.start);
            let start = floor_char(text, from);
            let end = floor_char(text, (start + WIDTH).min(range.end));
            start..end
        };
        let at = self.text.len();
        let lead = if shown.start > range.start { CUT.len() } else { 0 };
        if lead > 0 {
            self.text.push_str(CUT);
        }
        self.text.push_str(&text[shown.clone()]);
        if shown.end < range.end {
            self.text.push_str(CUT);
        }
        if range.end < text.len() {
            self.text.push('\n');
        }
        let column = text[range.start..shown.start].chars().count();
        self.rows.push(Row {
            at,
            line,
            lead,
            shown,
            column,
        });
    }

    /// Where `span` of the file is in the excerpt: cut to the rows shown, and to
    /// [`SPAN_LINES`] lines.
    pub(super) fn map(&self, span: Span) -> Range<usize> {
        let start = self.offset(span.start as usize);
        let end = self.offset(span.end as usize).max(start);
        let last_row = self.row_of_line(self.rows[self.row_at(start)].line + SPAN_LINES - 1);
        start..end.min(self.row_end(last_row))
    }

    /// The excerpt offset of a file offset: the nearest shown byte.
    fn offset(&self, offset: usize) -> usize {
        let i = self.rows.partition_point(|r| r.shown.start <= offset).saturating_sub(1);
        let row = &self.rows[i];
        row.at + row.lead + offset.clamp(row.shown.start, row.shown.end) - row.shown.start
    }

    /// The row holding an excerpt offset.
    fn row_at(&self, at: usize) -> usize {
        self.rows.partition_point(|r| r.at <= at).saturating_sub(1)
    }

    /// The last row on or before a file line.
    fn row_of_line(&self, line: usize) -> usize {
        self.rows.partition_point(|r| r.line <= line).saturating_sub(1)
    }

    /// The excerpt offset just past a row's shown text (before its cut marker).
    fn row_end(&self, i: usize) -> usize {
        let row = &self.rows[i];
        row.at + row.lead + row.shown.len()
    }

    /// The offset just past a row and its newline.
    fn row_stop(&self, i: usize) -> usize {
        self.rows.get(i + 1).map_or(self.text.len(), |r| r.at)
    }

    /// The 0-based column in the file of an excerpt offset.
    fn column(&self, i: usize, at: usize) -> usize {
        let row = &self.rows[i];
        let from = row.at + row.lead;
        row.column + self.text.get(from..at.max(from)).map_or(0, |s| s.chars().count())
    }
}

/// The first and last line of a span, the last one cut to [`SPAN_LINES`].
fn lines_of(file: &SourceFile, span: Span) -> (usize, usize) {
    let first = file.line_of(span.start as usize);
    let end = file.line_of((span.end as usize).saturating_sub(1).max(span.start as usize));
    (first, end.min(first + SPAN_LINES - 1))
}

/// Adds the lines of every gap of at most [`FILL`] lines.
fn fill_gaps(lines: &mut BTreeSet<usize>) {
    let gaps: Vec<Range<usize>> = lines
        .iter()
        .zip(lines.iter().skip(1))
        .filter(|&(a, b)| b - a - 1 <= FILL)
        .map(|(&a, &b)| a + 1..b)
        .collect();
    for gap in gaps {
        lines.extend(gap);
    }
}

/// The largest char boundary at or before `at`.
fn floor_char(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let (start, end) = (span.offset(), span.offset() + span.len());
        if end > self.text.len() || self.rows.is_empty() {
            return Err(MietteError::OutOfBounds);
        }
        let (first, last) = (self.row_at(start), self.row_at(end.saturating_sub(1).max(start)));
        // Context stops at a gap: the rows on either side are not neighbours.
        let mut top = first;
        while top > 0 && first - top < before && self.rows[top - 1].line + 1 == self.rows[top].line {
            top -= 1;
        }
        let mut bottom = last;
        while bottom + 1 < self.rows.len()
            && bottom - last < after
            && self.rows[bottom].line + 1 == self.rows[bottom + 1].line
        {
            bottom += 1;
        }
        let (from, line, column) = if before == 0 {
            (start, self.rows[first].line, self.column(first, start))
        } else {
            (self.rows[top].at, self.rows[top].line, 0)
        };
        let to = if after == 0 { end } else { self.row_stop(bottom) };
        // miette shows the contexts of two labels as one snippet when the first
        // reaches the second's line: the rows of a filled gap count, so that it
        // does so exactly when no line between them is missing.
        let line_count = bottom - top + 1 + FILL;
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            &self.text.as_bytes()[from..to],
            SourceSpan::new(from.into(), to - from),
            line,
            column,
            line_count,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::SourceMap;

    #[test]
    fn a_long_line_is_cut_around_the_label() {
        let mut map = SourceMap::new();
        let line = format!("name = \"{}\" bad", "a".repeat(100_000));
        let id = map.add("a.toml", format!("x = 1\n{line}\ny = 2\n"));
        let at = map.file(id).text().find("bad").unwrap();
        let excerpt = Excerpt::new(map.file(id), &[Span::new(id, at..at + 3)]);
        assert!(excerpt.text.len() < 3 * WIDTH, "{}", excerpt.text.len());
        let range = excerpt.map(Span::new(id, at..at + 3));
        assert_eq!(&excerpt.text[range.clone()], "bad");
        let contents = excerpt.read_span(&range.into(), 0, 0).unwrap();
        assert_eq!(
            (contents.line(), contents.column()),
            (1, 100_010),
            "0-based, as miette counts"
        );
        let contents = excerpt
            .read_span(&excerpt.map(Span::new(id, at..at + 3)).into(), 1, 1)
            .unwrap();
        let shown = String::from_utf8_lossy(contents.data()).into_owned();
        assert!(
            shown.starts_with("x = 1\n…aaa") && shown.ends_with("bad\ny = 2\n"),
            "{shown}"
        );
    }

    #[test]
    fn far_labels_get_rows_of_their_own_and_near_ones_share() {
        let mut map = SourceMap::new();
        let text: String = (0..100).map(|i| format!("k{i} = {i}\n")).collect();
        let id = map.add("a.toml", text.as_str());
        let span = |line: usize| {
            let at = text.find(&format!("k{line} ")).unwrap();
            Span::new(id, at..at + 2)
        };
        let excerpt = Excerpt::new(map.file(id), &[span(50), span(3), span(54)]);
        let lines: Vec<usize> = excerpt.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 3, 4, 49, 50, 51, 52, 53, 54, 55]);
    }
}
