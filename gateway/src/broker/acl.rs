//! The topic policy of the Anxin protocol: who may publish to which topic and subscribe to
//! which filter. Pure functions, no I/O; the broker calls them on every PUBLISH (and last
//! will) and on every SUBSCRIBE.
//!
//! | principal | publish | subscribe |
//! |---|---|---|
//! | device `D` | exactly `anxin/v1/dev/D/up/{event,hb,status}` | `anxin/v1/dev/D/down/{cmd,ack,+,#}` |
//! | gateway | anything under `anxin/v1/dev/` and the bridge prefix | the same (wildcards allowed) |
//! | bridge | anything under the bridge prefix (`zigbee2mqtt/`) | the same |
//! | multiplexer | any device's `anxin/v1/dev/D/up/{event,hb,status}` | any device's `anxin/v1/dev/{D,+}/down/{cmd,ack,+,#}` |
//! | anonymous | nothing | nothing |
//!
//! Nobody may use `$SYS/…`, `$share/…` or a filter that starts with a wildcard (`#`,
//! `+/…`): a filter is allowed only if every topic it can match is allowed.

use anxin_firmware::wire::topic::{self, PREFIX};

use super::Principal;

/// Default topic prefix of Zigbee2MQTT bridges (its `base_topic`).
pub const DEFAULT_BRIDGE_PREFIX: &str = "zigbee2mqtt";

/// The device topic policy (see the module documentation for the table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceTopicPolicy {
    /// First topic level of bridge traffic, without the trailing `/`.
    bridge_prefix: String,
}

impl Default for DeviceTopicPolicy {
    fn default() -> Self {
        Self::new(DEFAULT_BRIDGE_PREFIX)
    }
}

impl DeviceTopicPolicy {
    /// A policy whose bridges live under `bridge_prefix/…` (one topic level, no wildcards).
    pub fn new(bridge_prefix: &str) -> Self {
        Self {
            bridge_prefix: bridge_prefix.trim_end_matches('/').to_owned(),
        }
    }

    /// Whether `who` may publish to the topic name `topic`.
    pub fn may_publish(&self, who: &Principal, topic: &str) -> bool {
        if has_wildcard(topic) || topic.starts_with('$') {
            return false;
        }
        match who {
            Principal::Device(id) => match topic::parse(topic) {
                Ok((owner, channel)) => owner == *id && channel.is_uplink(),
                Err(_) => false,
            },
            Principal::Gateway => self.is_device_tree(topic) || self.is_bridge_tree(topic),
            Principal::Bridge(_) => self.is_bridge_tree(topic),
            Principal::Multiplexer(_) => {
                topic::parse(topic).is_ok_and(|(_, channel)| channel.is_uplink())
            }
            Principal::Anonymous => false,
        }
    }

    /// Whether `who` may subscribe to the topic filter `filter`.
    pub fn may_subscribe(&self, who: &Principal, filter: &str) -> bool {
        if !is_valid_filter(filter) || filter.starts_with('$') {
            return false;
        }
        match who {
            Principal::Device(id) => {
                let own = format!("{PREFIX}{id}/down/");
                match filter.strip_prefix(own.as_str()) {
                    Some(rest) => matches!(rest, "cmd" | "ack" | "+" | "#"),
                    None => false,
                }
            }
            Principal::Gateway => self.is_device_tree(filter) || self.is_bridge_tree(filter),
            Principal::Bridge(_) => self.is_bridge_tree(filter),
            Principal::Multiplexer(_) => is_any_downlink(filter),
            Principal::Anonymous => false,
        }
    }

    /// `anxin/v1/dev/` followed by at least one more level. The prefix itself has no
    /// wildcards, so any filter with this literal prefix matches only topics inside it.
    fn is_device_tree(&self, topic_or_filter: &str) -> bool {
        topic_or_filter
            .strip_prefix(PREFIX)
            .is_some_and(|rest| !rest.is_empty())
    }

    /// `<bridge_prefix>/` followed by at least one more level.
    fn is_bridge_tree(&self, topic_or_filter: &str) -> bool {
        topic_or_filter
            .strip_prefix(self.bridge_prefix.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|rest| !rest.is_empty())
    }
}

/// `anxin/v1/dev/{D or +}/down/{cmd, ack, +, #}`: some or every device's downlink.
fn is_any_downlink(filter: &str) -> bool {
    let Some(rest) = filter.strip_prefix(PREFIX) else {
        return false;
    };
    let mut levels = rest.split('/');
    let (Some(device), Some("down"), Some(last), None) =
        (levels.next(), levels.next(), levels.next(), levels.next())
    else {
        return false;
    };
    let device_ok = device == "+" || anxin_firmware::wire::DeviceId::new(device).is_ok();
    device_ok && matches!(last, "cmd" | "ack" | "+" | "#")
}

fn has_wildcard(topic: &str) -> bool {
    topic.contains(['+', '#'])
}

/// MQTT filter syntax: `+` and `#` fill a whole level, `#` only last; no NUL; not empty.
fn is_valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.contains('\0') {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    let last = levels.len() - 1;
    levels.iter().enumerate().all(|(i, level)| match *level {
        "+" => true,
        "#" => i == last,
        l => !has_wildcard(l),
    })
}

#[cfg(test)]
mod tests {
    use anxin_firmware::wire::DeviceId;

    use super::*;

    fn device(id: &str) -> Principal {
        Principal::Device(DeviceId::new(id).unwrap())
    }

    fn policy() -> DeviceTopicPolicy {
        DeviceTopicPolicy::default()
    }

    #[test]
    fn a_device_publishes_only_to_its_own_uplink_topics() {
        let p = policy();
        let a = device("A");
        for t in [
            "anxin/v1/dev/A/up/event",
            "anxin/v1/dev/A/up/hb",
            "anxin/v1/dev/A/up/status",
        ] {
            assert!(p.may_publish(&a, t), "{t}");
        }
        for t in [
            "anxin/v1/dev/B/up/event",
            "anxin/v1/dev/AB/up/event",
            "anxin/v1/dev/a/up/event",
            "anxin/v1/dev/A/down/cmd",
            "anxin/v1/dev/A/down/ack",
            "anxin/v1/dev/A/up/other",
            "anxin/v1/dev/A/up/event/more",
            "anxin/v1/dev/A/up",
            "anxin/v1/dev/A",
            "anxin/v2/dev/A/up/event",
            "zigbee2mqtt/kitchen",
            "$SYS/broker/uptime",
            "",
        ] {
            assert!(!p.may_publish(&a, t), "{t}");
        }
    }

    #[test]
    fn a_device_id_prefix_does_not_reach_a_longer_id() {
        let p = policy();
        assert!(!p.may_publish(&device("A"), "anxin/v1/dev/AB/up/event"));
        assert!(!p.may_publish(&device("AB"), "anxin/v1/dev/A/up/event"));
        assert!(!p.may_subscribe(&device("A"), "anxin/v1/dev/AB/down/cmd"));
        assert!(!p.may_subscribe(&device("AB"), "anxin/v1/dev/A/down/#"));
    }

    #[test]
    fn a_device_subscribes_only_to_its_own_downlink_topics() {
        let p = policy();
        let a = device("A");
        for f in [
            "anxin/v1/dev/A/down/cmd",
            "anxin/v1/dev/A/down/ack",
            "anxin/v1/dev/A/down/#",
            "anxin/v1/dev/A/down/+",
        ] {
            assert!(p.may_subscribe(&a, f), "{f}");
        }
        for f in [
            "anxin/v1/dev/+/down/#",
            "anxin/v1/dev/+/down/cmd",
            "anxin/v1/dev/B/down/cmd",
            "anxin/v1/dev/A/#",
            "anxin/v1/dev/A/+/cmd",
            "anxin/v1/dev/A/up/#",
            "anxin/v1/dev/A/up/event",
            "anxin/v1/dev/A/down/cmd/#",
            "anxin/v1/dev/#",
            "anxin/#",
            "#",
            "+/v1/dev/A/down/cmd",
            "$SYS/#",
            "$share/g/anxin/v1/dev/A/down/cmd",
            "anxin/v1/dev/A/down/c#",
            "",
        ] {
            assert!(!p.may_subscribe(&a, f), "{f}");
        }
    }

    #[test]
    fn the_gateway_may_use_the_whole_device_tree_but_not_the_broker_internals() {
        let p = policy();
        let g = Principal::Gateway;
        assert!(p.may_subscribe(&g, topic::GATEWAY_FILTER));
        assert!(p.may_subscribe(&g, "anxin/v1/dev/#"));
        assert!(p.may_subscribe(&g, "zigbee2mqtt/#"));
        assert!(p.may_publish(&g, "anxin/v1/dev/A/down/cmd"));
        assert!(p.may_publish(&g, "anxin/v1/dev/A/up/status"));
        assert!(p.may_publish(&g, "zigbee2mqtt/kitchen/set"));
        for f in [
            "#",
            "+/#",
            "$SYS/#",
            "anxin/v1/dev/",
            "anxin/v1/#",
            "other/x",
            "zigbee2mqtt",
            "zigbee2mqttx/a",
        ] {
            assert!(!p.may_subscribe(&g, f), "{f}");
            assert!(!p.may_publish(&g, f), "{f}");
        }
        assert!(!p.may_publish(&g, "anxin/v1/dev/+/down/cmd"));
    }

    #[test]
    fn a_bridge_stays_under_its_prefix_and_anonymous_gets_nothing() {
        let p = DeviceTopicPolicy::new("zigbee2mqtt/");
        let b = Principal::Bridge("z2m-home1".into());
        assert!(p.may_publish(&b, "zigbee2mqtt/kitchen"));
        assert!(p.may_subscribe(&b, "zigbee2mqtt/+/set"));
        assert!(!p.may_publish(&b, "anxin/v1/dev/A/up/event"));
        assert!(!p.may_subscribe(&b, "#"));
        let anon = Principal::Anonymous;
        assert!(!p.may_publish(&anon, "anxin/v1/dev/A/up/event"));
        assert!(!p.may_subscribe(&anon, "anxin/v1/dev/A/down/cmd"));
    }

    #[test]
    fn a_multiplexer_speaks_for_devices_and_reads_their_downlink_but_nothing_else() {
        let p = policy();
        let m = Principal::Multiplexer("anxin-load".into());
        for t in [
            "anxin/v1/dev/A/up/event",
            "anxin/v1/dev/B/up/hb",
            "anxin/v1/dev/B/up/status",
        ] {
            assert!(p.may_publish(&m, t), "{t}");
        }
        for t in [
            "anxin/v1/dev/A/down/cmd",
            "anxin/v1/dev/A/down/ack",
            "anxin/v1/dev/A/up/other",
            "anxin/v1/dev/+/up/event",
            "zigbee2mqtt/kitchen",
            "$SYS/broker/uptime",
        ] {
            assert!(!p.may_publish(&m, t), "{t}");
        }
        for f in [
            "anxin/v1/dev/+/down/ack",
            "anxin/v1/dev/+/down/#",
            "anxin/v1/dev/A/down/cmd",
        ] {
            assert!(p.may_subscribe(&m, f), "{f}");
        }
        for f in [
            "anxin/v1/dev/+/up/#",
            "anxin/v1/dev/#",
            "anxin/v1/dev/+/#",
            "anxin/v1/dev/+/down/cmd/#",
            "anxin/v1/dev/a+/down/#",
            "zigbee2mqtt/#",
            "#",
        ] {
            assert!(!p.may_subscribe(&m, f), "{f}");
        }
    }

    #[test]
    fn malformed_filters_are_refused_for_everyone() {
        let p = policy();
        for f in [
            "anxin/v1/dev/#/up",
            "anxin/v1/dev/a+/up/#",
            "anxin/v1/dev/A\0/x",
        ] {
            assert!(!p.may_subscribe(&Principal::Gateway, f), "{f}");
        }
    }
}
