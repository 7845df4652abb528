//! The action vocabulary: what the detector decides ([`Action`]), what a
//! rule in force does ([`RuleKind`]), and what a journal event records
//! ([`EventAction`]).
//!
//! Every name the agent prints, parses, labels a metric with, stores in the
//! journal or sends over the API comes from the `name` methods here: the
//! names are written out in this file only. Every conversion is an
//! exhaustive `match`, so a new variant fails to compile until each site
//! that must handle it does.
use core::fmt;

/// A detector action, in priority order: LOG 0 < THROTTLE 1 < DECEIVE 2 < BLOCK 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Action {
    Log = 0,
    Throttle = 1,
    Deceive = 2,
    Block = 3,
}

impl Action {
    /// Every action, in priority order.
    pub const ALL: [Action; 4] = [
        Action::Log,
        Action::Throttle,
        Action::Deceive,
        Action::Block,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Action::Log => "LOG",
            Action::Throttle => "THROTTLE",
            Action::Deceive => "DECEIVE",
            Action::Block => "BLOCK",
        }
    }

    /// The action named `s` (its [`Action::name`], any case).
    pub fn from_name(s: &str) -> Option<Action> {
        Action::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
    }

    pub const fn priority(self) -> u8 {
        self as u8
    }

    pub const fn from_priority(p: u8) -> Option<Action> {
        match p {
            0 => Some(Action::Log),
            1 => Some(Action::Throttle),
            2 => Some(Action::Deceive),
            3 => Some(Action::Block),
            _ => None,
        }
    }

    /// The rule this action puts in force; LOG puts none.
    pub const fn rule_kind(self) -> Option<RuleKind> {
        match self {
            Action::Log => None,
            Action::Throttle => Some(RuleKind::Throttle),
            Action::Deceive => Some(RuleKind::Deceive),
            Action::Block => Some(RuleKind::Block),
        }
    }
}

/// What a rule in force does to a source's packets. THROTTLE, DECEIVE and
/// BLOCK are the detector's actions; ALLOW exempts a source from them.
/// Listings sort in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleKind {
    Allow,
    Block,
    Throttle,
    Deceive,
}

impl RuleKind {
    pub const ALL: [RuleKind; 4] = [
        RuleKind::Allow,
        RuleKind::Block,
        RuleKind::Throttle,
        RuleKind::Deceive,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            RuleKind::Allow => "ALLOW",
            RuleKind::Throttle => Action::Throttle.name(),
            RuleKind::Deceive => Action::Deceive.name(),
            RuleKind::Block => Action::Block.name(),
        }
    }

    /// The rule kind named `s` (its [`RuleKind::name`], any case).
    pub fn from_name(s: &str) -> Option<RuleKind> {
        RuleKind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
    }

    /// The detector action that sets this kind of rule; ALLOW is the
    /// operator's alone.
    pub const fn action(self) -> Option<Action> {
        match self {
            RuleKind::Allow => None,
            RuleKind::Throttle => Some(Action::Throttle),
            RuleKind::Deceive => Some(Action::Deceive),
            RuleKind::Block => Some(Action::Block),
        }
    }
}

/// What a journal event records: a detector decision, or an operator (or
/// integration) putting a rule in force or taking it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventAction {
    /// A detector decision, or an operator putting this rule in force.
    Apply(Action),
    /// An allowlist entry added.
    Allow,
    /// A rule of this kind removed.
    Remove(RuleKind),
}

impl EventAction {
    pub const ALL: [EventAction; 9] = [
        EventAction::Apply(Action::Log),
        EventAction::Apply(Action::Throttle),
        EventAction::Apply(Action::Deceive),
        EventAction::Apply(Action::Block),
        EventAction::Allow,
        EventAction::Remove(RuleKind::Block),
        EventAction::Remove(RuleKind::Throttle),
        EventAction::Remove(RuleKind::Allow),
        EventAction::Remove(RuleKind::Deceive),
    ];

    pub const fn name(self) -> &'static str {
        match self {
            EventAction::Apply(a) => a.name(),
            EventAction::Allow => RuleKind::Allow.name(),
            EventAction::Remove(RuleKind::Block) => "UNBLOCK",
            EventAction::Remove(RuleKind::Throttle) => "UNTHROTTLE",
            EventAction::Remove(RuleKind::Allow) => "DISALLOW",
            EventAction::Remove(RuleKind::Deceive) => "UNDECEIVE",
        }
    }

    /// The event action named `s` (its [`EventAction::name`], any case).
    pub fn from_name(s: &str) -> Option<EventAction> {
        EventAction::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
    }

    /// The event that records putting a rule of kind `k` in force.
    pub const fn set(k: RuleKind) -> EventAction {
        match k.action() {
            Some(a) => EventAction::Apply(a),
            None => EventAction::Allow,
        }
    }
}

macro_rules! display_by_name {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    )*};
}
display_by_name!(Action, RuleKind, EventAction);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        for (i, a) in EventAction::ALL.into_iter().enumerate() {
            assert_eq!(EventAction::from_name(a.name()), Some(a));
            for b in &EventAction::ALL[i + 1..] {
                assert_ne!(a.name(), b.name(), "{a:?} and {b:?}");
            }
        }
        for a in Action::ALL {
            assert_eq!(Action::from_name(a.name()), Some(a));
            assert_eq!(Action::from_priority(a.priority()), Some(a));
            assert_eq!(
                a.rule_kind().and_then(RuleKind::action),
                a.rule_kind().map(|_| a)
            );
        }
        for k in RuleKind::ALL {
            assert_eq!(RuleKind::from_name(k.name()), Some(k));
            // Metrics index per-kind series by discriminant.
            assert_eq!(RuleKind::ALL[k as usize], k);
            assert_eq!(EventAction::set(k).name(), k.name());
        }
        assert_eq!(Action::from_name("deceive"), Some(Action::Deceive));
        assert_eq!(Action::from_priority(4), None);
        assert_eq!(EventAction::from_name("DROP"), None);
    }
}
