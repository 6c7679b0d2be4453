//! `-d` and `-dd`: warnings and debug notes on stderr, through tracing.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// `sysjail: warning: ...`, as sysjail's other messages read.
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "note",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        write!(w, "sysjail: {level}: ")?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// Nothing by default; warnings with -d, debug notes with -dd, every
/// notification the supervisor answers with -ddd.
pub fn init(debug: u8) {
    let level = match debug {
        0 => return,
        1 => Level::WARN,
        2 => Level::DEBUG,
        _ => Level::TRACE,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        // Its own report of a failed write is an eprintln!, which panics when
        // stderr is gone.
        .log_internal_errors(false)
        .event_format(Plain)
        .try_init();
}
