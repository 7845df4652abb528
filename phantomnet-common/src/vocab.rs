//! The action vocabulary: what the detector decides ([`Action`]), what a
//! rule in force does ([`RuleKind`]), and what a journal event records
//! ([`EventAction`]).
//!
//! Every name the agent prints, parses, labels a metric with, stores in the
//! journal or sends over the API comes from the `name` methods here: the
//! names are written out in this file only, each list of variants once
//! (`vocabulary!` derives `ALL` and `name` from it). Every conversion is an
//! exhaustive `match`, so a new variant fails to compile until each site
//! that must handle it does.
use core::fmt;

/// Declares a fieldless enum with its `ALL` list and its `name`s from one
/// list of variants, so the list, the names and the enum cannot drift: a
/// new variant is in `ALL` and has a name, or the enum does not compile.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        pub enum $T:ident { $($(#[$vmeta:meta])* $V:ident = $name:expr),+ $(,)? }
    ) => {
        $(#[$meta])*
        pub enum $T { $($(#[$vmeta])* $V),+ }

        impl $T {
            /// Every variant, in declaration order (`ALL[v as usize] == v`).
            pub const ALL: [$T; [$($T::$V),+].len()] = [$($T::$V),+];

            pub const fn name(self) -> &'static str {
                match self { $($T::$V => $name),+ }
            }
        }
    };
}

vocabulary! {
    /// A detector action, in priority order: LOG 0 < THROTTLE 1 < DECEIVE 2 < BLOCK 3.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    #[repr(u8)]
    pub enum Action {
        Log = "LOG",
        Throttle = "THROTTLE",
        Deceive = "DECEIVE",
        Block = "BLOCK",
    }
}

impl Action {
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
        if (p as usize) < Action::ALL.len() {
            Some(Action::ALL[p as usize])
        } else {
            None
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

vocabulary! {
    /// What a rule in force does to a source's packets. THROTTLE, DECEIVE and
    /// BLOCK are the detector's actions; ALLOW exempts a source from them.
    /// Listings sort in this order.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum RuleKind {
        Allow = "ALLOW",
        Block = Action::Block.name(),
        Throttle = Action::Throttle.name(),
        Deceive = Action::Deceive.name(),
    }
}

impl RuleKind {
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
    /// Every event action: each detector action, ALLOW, then each removal.
    pub const ALL: [EventAction; Action::ALL.len() + 1 + RuleKind::ALL.len()] = {
        let mut all = [EventAction::Allow; Action::ALL.len() + 1 + RuleKind::ALL.len()];
        let mut i = 0;
        while i < Action::ALL.len() {
            all[i] = EventAction::Apply(Action::ALL[i]);
            i += 1;
        }
        let mut k = 0;
        while k < RuleKind::ALL.len() {
            all[Action::ALL.len() + 1 + k] = EventAction::Remove(RuleKind::ALL[k]);
            k += 1;
        }
        all
    };

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
            assert_eq!(Action::ALL[a.priority() as usize], a);
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
