//! What every PNG the agent draws shares: the font, compiled into the
//! binary (egui's Ubuntu-Light, from the `epaint_default_fonts` crate), so
//! no system font is needed. `train` draws the confusion matrix and ROC
//! curve, `replay` the per-scenario bars and time-to-enforcement curve.

use std::sync::Once;

use plotters::style::FontStyle;

/// The family name the embedded font is registered under.
pub const FAMILY: &str = "sans-serif";

/// Registers the embedded font once per process; a failure only costs the
/// plots their text, so it is logged, not returned.
pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if plotters::style::register_font(
            FAMILY,
            FontStyle::Normal,
            epaint_default_fonts::UBUNTU_LIGHT,
        )
        .is_err()
        {
            tracing::warn!("could not register the embedded plot font");
        }
    });
}
