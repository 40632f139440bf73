//! The daily API budget: backups may bring the org's usage up to `apiUsageLimitPercent` of its
//! daily allocation, and no further. Usage is read from `/limits` and updated from the
//! `Sforce-Limit-Info` header of every response, so other integrations' calls count too.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub used: u64,
    pub max: u64,
    pub limit_percent: u8,
    /// Calls this run made.
    pub calls: u64,
}

impl Budget {
    pub fn new(limit_percent: u8) -> Self {
        Budget {
            used: 0,
            max: 0,
            limit_percent,
            calls: 0,
        }
    }

    /// The usage the backup may bring the org to.
    pub fn ceiling(&self) -> u64 {
        self.max * u64::from(self.limit_percent) / 100
    }

    /// Whether one more call stays under the ceiling (unknown usage: allowed, the first call
    /// learns it).
    pub fn allows_call(&self) -> bool {
        self.max == 0 || self.used < self.ceiling()
    }

    /// Reads `api-usage=U/M` from a `Sforce-Limit-Info` header.
    pub fn observe(&mut self, header: &str) {
        let Some(usage) = header
            .split(';')
            .find_map(|part| part.trim().strip_prefix("api-usage="))
        else {
            return;
        };
        if let Some((used, max)) = usage.split_once('/')
            && let (Ok(used), Ok(max)) = (used.trim().parse(), max.trim().parse())
        {
            self.used = used;
            self.max = max;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_is_a_share_of_the_org_allocation() {
        let mut budget = Budget::new(75);
        assert!(
            budget.allows_call(),
            "unknown usage: the first call finds out"
        );
        budget.observe("api-usage=749/1000; per-app-api-usage=17/250(appName=sample)");
        assert_eq!(
            (budget.used, budget.max, budget.ceiling()),
            (749, 1000, 750)
        );
        assert!(budget.allows_call());
        budget.observe("api-usage=750/1000");
        assert!(!budget.allows_call());
        budget.observe("garbage");
        assert_eq!(budget.used, 750, "an unreadable header changes nothing");
    }
}
