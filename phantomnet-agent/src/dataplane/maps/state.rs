//! The data plane's counters and its run-time config (sampling, dry-run).
use super::*;

impl Maps {
    /// Per-outcome totals over all CPUs.
    pub fn counters(&self) -> Result<Counters, DataplaneError> {
        let mut out = Counters::default();
        for outcome in Outcome::ALL {
            let per_cpu: PerCpuValues<Counter> = self
                .counters
                .get(&(outcome as u32), 0)
                .map_err(|e| DataplaneError::map("reading PN_COUNTERS", e))?;
            let c = &mut out.0[outcome as usize];
            for v in per_cpu.iter() {
                c.packets += v.packets;
                c.bytes += v.bytes;
            }
        }
        Ok(out)
    }

    pub fn config(&self) -> Result<Config, DataplaneError> {
        self.config
            .get(&0, 0)
            .map_err(|e| DataplaneError::map("reading PN_CONFIG", e))
    }

    pub(super) fn update_config(
        &mut self,
        f: impl FnOnce(&mut Config),
    ) -> Result<Config, DataplaneError> {
        let mut cfg = self.config()?;
        f(&mut cfg);
        self.config
            .set(0, cfg, 0)
            .map_err(|e| DataplaneError::map("writing PN_CONFIG", e))?;
        Ok(cfg)
    }

    /// Samples 1 packet in `every` (0 turns sampling off).
    pub fn set_sampling(&mut self, every: u32) -> Result<Config, DataplaneError> {
        self.update_config(|c| c.sample_every = every)
    }

    /// Priority sampling on top of the 1-in-N draw (`config_flags::PRIORITY_SAMPLING`).
    pub fn set_priority_sampling(&mut self, on: bool) -> Result<Config, DataplaneError> {
        self.update_config(|c| {
            if on {
                c.flags |= config_flags::PRIORITY_SAMPLING;
            } else {
                c.flags &= !config_flags::PRIORITY_SAMPLING;
            }
        })
    }

    /// Dry-run: outcomes are counted as if enforced, every packet passes.
    pub fn set_dry_run(&mut self, on: bool) -> Result<Config, DataplaneError> {
        self.update_config(|c| {
            if on {
                c.flags |= config_flags::DRY_RUN;
            } else {
                c.flags &= !config_flags::DRY_RUN;
            }
        })
    }
}

impl Maps {
    /// Sets `bits` in `Config::lists` so XDP looks in those maps. Called
    /// right after an insert, so that [`Maps::sync_lists`] running in
    /// another process either sees the entry or leaves the bit set.
    pub(super) fn mark_lists(&mut self, bits: u32) -> Result<(), DataplaneError> {
        if self.config()?.lists & bits == bits {
            return Ok(());
        }
        self.update_config(|c| c.lists |= bits).map(drop)
    }

    /// Clears `bit` if its maps are now empty (after a removal), with the
    /// same re-check as [`Maps::sync_lists`]: a concurrent insert either is
    /// seen or sets the bit again itself.
    pub(super) fn unmark_if_empty(&mut self, bit: u32) -> Result<(), DataplaneError> {
        if self.lists_in_use() & bit != 0 || self.config()?.lists & bit == 0 {
            return Ok(());
        }
        self.update_config(|c| c.lists &= !bit)?;
        if self.lists_in_use() & bit != 0 {
            self.update_config(|c| c.lists |= bit)?;
        }
        Ok(())
    }

    /// Which lists hold entries now, one `keys().next()` per map.
    fn lists_in_use(&self) -> u32 {
        let mut bits = 0;
        let mut any = |bit: u32, nonempty: bool| {
            if nonempty {
                bits |= bit;
            }
        };
        any(
            list_flags::ALLOW_HOST,
            self.allow_h4.keys().next().is_some() || self.allow_h6.keys().next().is_some(),
        );
        any(
            list_flags::ALLOW_PREFIX,
            self.allow_v4.keys().next().is_some() || self.allow_v6.keys().next().is_some(),
        );
        any(
            list_flags::BLOCK_HOST,
            self.block_h4.keys().next().is_some() || self.block_h6.keys().next().is_some(),
        );
        any(
            list_flags::BLOCK_PREFIX,
            self.block_v4.keys().next().is_some() || self.block_v6.keys().next().is_some(),
        );
        any(
            list_flags::THROTTLE,
            self.rule_v4.keys().next().is_some() || self.rule_v6.keys().next().is_some(),
        );
        bits
    }

    /// Makes `Config::lists` say exactly which maps hold entries (an entry
    /// written by another tool, e.g. `bpftool`, gets its bit; an emptied
    /// map loses it). Clearing races with a concurrent writer (the offline
    /// CLI sets a bit, then inserts), so after clearing the maps are read
    /// again and any bit that is needed after all is set back: a clear bit
    /// never hides an entry past this call. Returns the bits now set.
    pub fn sync_lists(&mut self) -> Result<u32, DataplaneError> {
        let used = self.lists_in_use();
        let cfg = self.config()?;
        if cfg.lists == used {
            return Ok(used);
        }
        self.update_config(|c| c.lists = used)?;
        let again = self.lists_in_use();
        if again & !used != 0 {
            self.update_config(|c| c.lists |= again)?;
        }
        Ok(used | again)
    }
}
