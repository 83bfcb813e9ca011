//! Topics of published messages and the filters functions subscribe with
//! (`config.json` triggers of `"type": "topic"`), as MQTT has them, since
//! Link IoT Edge's messages are MQTT's: levels separated by `/`; in a
//! filter, `+` stands for one whole level and `#`, as the last level, for
//! any number of levels (none included).

/// Why a topic or a filter is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TopicError(String);

/// The longest topic or filter, as MQTT bounds them.
const MAX_LEN: usize = 65_535;

/// Checks a topic that a message is published to: no wildcards, no NUL.
pub fn check_topic(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() || topic.len() > MAX_LEN || topic.contains('\0') {
        return Err(TopicError(format!(
            "a topic is 1 to {MAX_LEN} bytes without NUL, got {} bytes",
            topic.len()
        )));
    }
    if topic.contains(['+', '#']) {
        return Err(TopicError(format!(
            "topic {topic:?}: + and # are for subscriptions, not for publishing"
        )));
    }
    Ok(())
}

/// A subscription's topic filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicFilter(String);

impl TopicFilter {
    /// Parses a filter, saying what is wrong with one that is not.
    pub fn parse(filter: &str) -> Result<Self, TopicError> {
        if filter.is_empty() || filter.len() > MAX_LEN || filter.contains('\0') {
            return Err(TopicError(format!(
                "a topic filter is 1 to {MAX_LEN} bytes without NUL"
            )));
        }
        let levels: Vec<&str> = filter.split('/').collect();
        for (i, level) in levels.iter().enumerate() {
            let last = i + 1 == levels.len();
            let wild = level.contains(['+', '#']);
            let ok = !wild || *level == "+" || (*level == "#" && last);
            if !ok {
                return Err(TopicError(format!(
                    "topic filter {filter:?}: + must be a whole level, and # the whole last level"
                )));
            }
        }
        Ok(Self(filter.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a message published to `topic` reaches this subscription.
    pub fn matches(&self, topic: &str) -> bool {
        let mut topic_levels = topic.split('/');
        for level in self.0.split('/') {
            match level {
                "#" => return true,
                "+" => {
                    if topic_levels.next().is_none() {
                        return false;
                    }
                }
                exact => {
                    if topic_levels.next() != Some(exact) {
                        return false;
                    }
                }
            }
        }
        topic_levels.next().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::{check_topic, TopicFilter};

    fn filter(f: &str) -> TopicFilter {
        TopicFilter::parse(f).expect("valid")
    }

    #[test]
    fn a_plus_stands_for_exactly_one_level() {
        assert!(filter("sensors/+/temp").matches("sensors/kitchen/temp"));
        assert!(!filter("sensors/+/temp").matches("sensors/kitchen/north/temp"));
        assert!(!filter("sensors/+").matches("sensors"));
        assert!(filter("+/+").matches("a/b"));
    }

    #[test]
    fn a_hash_stands_for_any_levels_that_follow_none_included() {
        assert!(filter("sensors/#").matches("sensors/kitchen/temp"));
        assert!(filter("sensors/#").matches("sensors"));
        assert!(filter("#").matches("anything/at/all"));
        assert!(!filter("sensors/#").matches("lights/kitchen"));
    }

    #[test]
    fn an_exact_filter_matches_its_topic_only() {
        assert!(filter("a/b").matches("a/b"));
        assert!(!filter("a/b").matches("a/b/c"));
        assert!(!filter("a/b").matches("a"));
    }

    #[test]
    fn misplaced_wildcards_are_refused() {
        for bad in ["a/#/b", "a/b#", "a+/b", "", "#/a"] {
            assert!(TopicFilter::parse(bad).is_err(), "{bad}");
        }
        assert!(check_topic("a/+").is_err());
        assert!(check_topic("a/b").is_ok());
    }
}
