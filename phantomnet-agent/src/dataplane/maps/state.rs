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

    fn update_config(&mut self, f: impl FnOnce(&mut Config)) -> Result<Config, DataplaneError> {
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
