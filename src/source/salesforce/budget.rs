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
    /// Calls sent whose answer (and the org's usage after them) has not come yet: reserved
    /// against the ceiling, so concurrent fetches never overshoot it together.
    pub in_flight: u64,
}

/// Whether a call may go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    Granted,
    /// Calls in flight hold what is left (or the usage is not known yet): ask again when one
    /// has answered.
    Wait,
    /// The org's usage is at the ceiling.
    Spent,
}

impl Budget {
    pub fn new(limit_percent: u8) -> Self {
        Budget {
            used: 0,
            max: 0,
            limit_percent,
            calls: 0,
            in_flight: 0,
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

    /// Reserves one call against the ceiling. While the usage is unknown, one call at a time
    /// goes, to learn it.
    pub fn reserve(&mut self) -> Reservation {
        let verdict = if !self.allows_call() {
            Reservation::Spent
        } else if self.max == 0 {
            if self.in_flight == 0 {
                Reservation::Granted
            } else {
                Reservation::Wait
            }
        } else if self.used + self.in_flight < self.ceiling() {
            Reservation::Granted
        } else {
            Reservation::Wait
        };
        if verdict == Reservation::Granted {
            self.in_flight += 1;
        }
        verdict
    }

    /// A reserved call answered: with the org's usage header, or without (then it is counted
    /// as one more call, as the org counts failed calls too). Answers come back in any order,
    /// so an older, lower figure never lowers the usage this run has seen.
    pub fn settle(&mut self, header: Option<&str>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.calls += 1;
        let seen = self.used;
        if !header.is_some_and(|header| self.observe(header)) {
            if self.max > 0 {
                self.used += 1;
            }
            return;
        }
        self.used = self.used.max(seen);
    }

    /// Reads `api-usage=U/M` from a `Sforce-Limit-Info` header; false when it has none.
    pub fn observe(&mut self, header: &str) -> bool {
        let Some(usage) = header
            .split(';')
            .find_map(|part| part.trim().strip_prefix("api-usage="))
        else {
            return false;
        };
        if let Some((used, max)) = usage.split_once('/')
            && let (Ok(used), Ok(max)) = (used.trim().parse(), max.trim().parse())
        {
            self.used = used;
            self.max = max;
            return true;
        }
        false
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

    #[test]
    fn calls_in_flight_hold_their_share_of_the_ceiling() {
        let mut budget = Budget::new(75);
        assert_eq!(budget.reserve(), Reservation::Granted);
        assert_eq!(
            budget.reserve(),
            Reservation::Wait,
            "unknown: one at a time"
        );
        budget.settle(Some("api-usage=747/1000"));
        assert_eq!(budget.reserve(), Reservation::Granted);
        assert_eq!(budget.reserve(), Reservation::Granted);
        assert_eq!(budget.reserve(), Reservation::Granted);
        assert_eq!(budget.reserve(), Reservation::Wait, "750 is the ceiling");
        budget.settle(Some("api-usage=749/1000"));
        // An answer that overtook an older one: the older, lower figure changes nothing.
        budget.settle(Some("api-usage=748/1000"));
        assert_eq!(budget.used, 749);
        assert_eq!(
            budget.reserve(),
            Reservation::Wait,
            "749 used and one in flight"
        );
        budget.settle(None);
        assert_eq!(
            budget.used, 750,
            "an answer without the header counts as a call"
        );
        assert_eq!(budget.reserve(), Reservation::Spent);
        assert_eq!(budget.calls, 4);
    }
}
