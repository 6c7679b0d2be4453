//! What a jail wrote, made safe to show on an operator's terminal.
//!
//! A jail's output reaches the host's terminals through `sysjail logs` and
//! the error of a failed `up -b`. Passed through as bytes, a hostile jail
//! could write escape sequences that the terminal obeys: retitle it, rewrite
//! lines already shown with carriage returns, or, on some terminals, answer
//! queries into the operator's input. So control characters are shown as
//! escapes instead, as `journalctl` and GNU `ls` do on a terminal: `\e[2J`
//! reads `\x1b[2J`. Newlines and tabs stay; bytes that are not UTF-8 are
//! shown as `\xNN`; C1 controls (U+0080 to U+009F, which some terminals
//! obey as 8-bit sequences) are escaped like C0 ones.
//!
//! ```
//! let shown = sysjail::terminal::escape(b"ok\n\x1b]0;owned\x07\r\xff");
//! assert_eq!(shown, "ok\n\\x1b]0;owned\\x07\\x0d\\xff");
//! ```

use std::fmt::Write;

/// `bytes`, with every control character but newline and tab, and every
/// byte that is not part of UTF-8, written as an escape.
pub fn escape(bytes: &[u8]) -> String {
    let mut e = Escaper::default();
    let mut out = e.push(bytes);
    out.push_str(&e.finish());
    out
}

/// [`escape`] for a stream read in pieces: a UTF-8 sequence cut between two
/// reads is held back until its rest arrives, instead of being shown as
/// bytes that are not UTF-8.
#[derive(Debug, Default)]
pub struct Escaper {
    carry: Vec<u8>,
}

impl Escaper {
    /// The next piece of the stream, escaped; an incomplete sequence at its
    /// end waits for the next piece.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        let mut input = std::mem::take(&mut self.carry);
        input.extend_from_slice(bytes);
        let mut out = String::with_capacity(input.len());
        let mut rest = &input[..];
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    escape_str(text, &mut out);
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    // valid_up_to says this much is UTF-8.
                    escape_str(std::str::from_utf8(good).unwrap_or_default(), &mut out);
                    match e.error_len() {
                        Some(n) => {
                            for b in &bad[..n] {
                                let _ = write!(out, "\\x{b:02x}");
                            }
                            rest = &bad[n..];
                        }
                        // Cut short at the end: its rest may come next.
                        None => {
                            self.carry = bad.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        out
    }

    /// The end of the stream: what was held back, as the bytes it is.
    pub fn finish(&mut self) -> String {
        let mut out = String::new();
        for b in std::mem::take(&mut self.carry) {
            let _ = write!(out, "\\x{b:02x}");
        }
        out
    }
}

fn escape_str(text: &str, out: &mut String) {
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Escaper, escape};

    #[test]
    fn controls_are_shown_and_text_is_kept() {
        assert_eq!(escape(b"plain text\tand tabs\n"), "plain text\tand tabs\n");
        assert_eq!(escape("h\u{e9}llo \u{1f600}".as_bytes()), "h\u{e9}llo \u{1f600}");
        assert_eq!(escape(b"\x1b[2J\x1b]0;title\x07"), "\\x1b[2J\\x1b]0;title\\x07");
        assert_eq!(escape(b"line\rspoof"), "line\\x0dspoof");
        assert_eq!(escape(b"\x7f\x00"), "\\x7f\\x00");
        // CSI as a C1 control, in UTF-8 and as a raw 8-bit byte.
        assert_eq!(escape("\u{9b}31m".as_bytes()), "\\x9b31m");
        assert_eq!(escape(b"\x9b31m"), "\\x9b31m");
        assert_eq!(escape(b"a\xffb\xc3"), "a\\xffb\\xc3");
    }

    #[test]
    fn a_sequence_cut_between_reads_is_whole() {
        let mut e = Escaper::default();
        let bytes = "\u{e9}\u{1f600}".as_bytes();
        let mut out = String::new();
        for b in bytes {
            out.push_str(&e.push(std::slice::from_ref(b)));
        }
        out.push_str(&e.finish());
        assert_eq!(out, "\u{e9}\u{1f600}");
        // An end that never completes is shown as its bytes.
        assert_eq!(e.push(b"x\xf0\x9f"), "x");
        assert_eq!(e.finish(), "\\xf0\\x9f");
    }
}
