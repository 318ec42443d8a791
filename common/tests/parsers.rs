//! Property tests of every parser of user input: ID maps, subordinate-ID files, capability
//! lists, `--user`, `-p` and `--tmp-overlay-size`. Each parser takes any input without panicking, says what is wrong
//! in one printable line, and reads back what it prints.
//!
//! The test command runs a short form (64 cases per property); a campaign sets more with
//! `PROPTEST_CASES=N cargo test -p common --test parsers` (see bench/README.md).

use common::caps::{cap_name, full_mask, last_cap, parse_user, Lockdown, User};
use common::errors::one_line;
use common::idmap::{subordinate_ranges, IdKind, IdMap, IdRange};
use common::mount::TmpfsSize;
use common::net::{Proto, Publish};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        // No files of failing cases in the checkout: a failure prints its minimal input.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Asserts the error contract of a message: one line, nothing a terminal would act on.
fn expect_one_printable_line(err: &anyhow::Error) {
    let line = one_line(err);
    assert!(!line.is_empty());
    assert!(!line.chars().any(char::is_control), "{line:?}");
}

/// Text that looks like what the parsers expect, often off by a little: digits, the
/// separators, names, signs, spaces, control characters and other characters.
fn near_miss() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[0-9]{1,11}",
        Just(":".to_string()),
        Just(",".to_string()),
        Just("/".to_string()),
        Just("tcp".to_string()),
        Just("udp".to_string()),
        Just("all".to_string()),
        Just("cap_".to_string()),
        "[a-zA-Z_]{1,12}",
        Just("-".to_string()),
        Just("+".to_string()),
        Just(" ".to_string()),
        Just("\x1b[2J\r\n\x07".to_string()),
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

fn any_input() -> impl Strategy<Value = String> {
    prop_oneof![near_miss(), ".*"]
}

fn overlaps(a_start: u32, a_count: u32, b_start: u32, b_count: u32) -> bool {
    let (a, b) = (a_start as u64, b_start as u64);
    a < b + b_count as u64 && b < a + a_count as u64
}

/// The kernel's rules for a map, written out plainly.
fn valid(ranges: &[IdRange]) -> bool {
    let last = u32::MAX as u64 - 1;
    !ranges.is_empty()
        && ranges.len() <= 340
        && ranges.iter().all(|r| {
            r.count > 0
                && r.inside as u64 + r.count as u64 - 1 <= last
                && r.outside as u64 + r.count as u64 - 1 <= last
        })
        && ranges.iter().enumerate().all(|(i, a)| {
            ranges[..i].iter().all(|b| {
                !overlaps(a.inside, a.count, b.inside, b.count)
                    && !overlaps(a.outside, a.count, b.outside, b.count)
            })
        })
}

fn id_range() -> impl Strategy<Value = IdRange> {
    // Small numbers collide (overlaps), large ones reach the 32-bit edge.
    let number = prop_oneof![0u32..70_000, any::<u32>(), (u32::MAX - 70_000)..=u32::MAX];
    let count = prop_oneof![0u32..70_000, any::<u32>()];
    (number.clone(), number, count).prop_map(|(inside, outside, count)| IdRange {
        inside,
        outside,
        count,
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn maps_are_accepted_exactly_when_the_kernel_would(
        ranges in prop::collection::vec(id_range(), 0..6)
    ) {
        let text = ranges.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        match text.parse::<IdMap>() {
            Ok(map) => {
                prop_assert!(valid(&ranges), "accepted {}", text);
                prop_assert_eq!(map.ranges(), &ranges[..]);
                prop_assert_eq!(map.to_string(), text.clone());
                for r in &ranges {
                    prop_assert_eq!(map.to_host(r.inside), Some(r.outside));
                }
            }
            Err(e) => {
                prop_assert!(!valid(&ranges), "refused {}: {:#}", text, e);
                expect_one_printable_line(&e);
            }
        }
    }

    #[test]
    fn any_map_text_parses_or_fails_in_one_line(text in any_input()) {
        match text.parse::<IdMap>() {
            Ok(map) => prop_assert_eq!(map.to_string().parse::<IdMap>().unwrap(), map),
            Err(e) => expect_one_printable_line(&e),
        }
    }

    #[test]
    fn subordinate_files_yield_the_callers_lines_in_order(
        lines in prop::collection::vec(
            (prop_oneof![Just("me"), Just("other"), Just("#me")],
             any::<u32>(), 0u32..100_000, any::<bool>(), "[ :a-z0-9]{0,8}"),
            0..12,
        )
    ) {
        let names = vec!["me".to_string()];
        let mut text = String::new();
        let mut expected = Vec::new();
        for (who, start, count, well_formed, junk) in &lines {
            if *well_formed {
                text.push_str(&format!("{who}:{start}:{count}\n"));
                if *who == "me" && *count > 0 {
                    expected.push((*start, *count));
                }
            } else {
                // A comment, or a blank line.
                text.push_str(&format!("#{junk}\n   \n"));
            }
        }
        prop_assert_eq!(subordinate_ranges(&text, IdKind::User, &names), expected);
    }

    #[test]
    fn any_subordinate_file_is_read_without_panicking(text in any_input()) {
        let names = vec!["me".to_string()];
        for (_, count) in subordinate_ranges(&text, IdKind::Group, &names) {
            prop_assert!(count > 0);
        }
    }

    #[test]
    fn capability_lists_drop_exactly_what_they_name(
        picks in prop::collection::vec((any::<prop::sample::Index>(), any::<bool>(),
                                         any::<bool>(), 0usize..3), 1..8)
    ) {
        let last = last_cap().unwrap();
        let mut mask = 0u64;
        let mut words = Vec::new();
        for (index, upper, prefixed, spaces) in picks {
            let cap = index.index(last as usize + 1) as u8;
            mask |= 1 << cap;
            let name = cap_name(cap).to_lowercase();
            let name = if prefixed {
                name
            } else {
                name.trim_start_matches("cap_").to_string()
            };
            let name = if upper { name.to_uppercase() } else { name };
            words.push(format!("{}{name}{}", " ".repeat(spaces), " ".repeat(spaces)));
        }
        let list = words.join(",");
        let lockdown = Lockdown::from_options(std::slice::from_ref(&list), &[], None, false).unwrap();
        prop_assert_eq!(lockdown.bounding(), full_mask(last) & !mask, "{}", list);
        let given_back =
            Lockdown::from_options(&["all".into()], std::slice::from_ref(&list), None, false).unwrap();
        prop_assert_eq!(given_back.bounding(), mask, "{}", list);
    }

    #[test]
    fn any_capability_list_parses_or_fails_in_one_line(text in any_input()) {
        for (drop, add) in [(vec![text.clone()], vec![]), (vec![], vec![text.clone()])] {
            if let Err(e) = Lockdown::from_options(&drop, &add, None, false) {
                expect_one_printable_line(&e);
            }
        }
    }

    #[test]
    fn users_read_back(uid in 0u32..u32::MAX, gid in prop::option::of(0u32..u32::MAX)) {
        let text = match gid {
            Some(gid) => format!("{uid}:{gid}"),
            None => uid.to_string(),
        };
        let user = parse_user(&text).unwrap();
        prop_assert_eq!(user, User { uid, gid: gid.unwrap_or(uid) });
        prop_assert_eq!(parse_user(&user.to_string()).unwrap(), user);
    }

    #[test]
    fn any_user_parses_or_fails_in_one_line(text in any_input()) {
        match parse_user(&text) {
            Ok(user) => {
                prop_assert!(user.uid != u32::MAX && user.gid != u32::MAX);
                prop_assert_eq!(parse_user(&user.to_string()).unwrap(), user);
            }
            Err(e) => expect_one_printable_line(&e),
        }
    }

    #[test]
    fn published_ports_read_back(
        host in 1u16..,
        container in prop::option::of(1u16..),
        proto in prop::option::of(any::<bool>()),
    ) {
        let mut text = host.to_string();
        if let Some(container) = container {
            text.push_str(&format!(":{container}"));
        }
        match proto {
            Some(true) => text.push_str("/udp"),
            Some(false) => text.push_str("/tcp"),
            None => {}
        }
        let publish: Publish = text.parse().unwrap();
        let expected_proto = if proto == Some(true) { Proto::Udp } else { Proto::Tcp };
        prop_assert_eq!(
            publish,
            Publish { host, container: container.unwrap_or(host), proto: expected_proto }
        );
        prop_assert_eq!(publish.to_string().parse::<Publish>().unwrap(), publish);
    }

    #[test]
    fn any_tmpfs_size_parses_or_fails_in_one_line(text in any_input()) {
        match text.parse::<TmpfsSize>() {
            Ok(size) => {
                // Never 0 (no limit to tmpfs) nor past all of memory.
                let number: String = size.as_str().chars().filter(char::is_ascii_digit).collect();
                prop_assert!(number.parse::<u64>().unwrap() > 0, "{}", size);
                if let Some(percent) = size.as_str().strip_suffix('%') {
                    prop_assert!(percent.parse::<u32>().unwrap() <= 100, "{}", size);
                }
                prop_assert_eq!(size.to_string().parse::<TmpfsSize>().unwrap(), size);
            }
            Err(e) => expect_one_printable_line(&e),
        }
    }

    #[test]
    fn tmpfs_sizes_read_back(n in 1u32.., unit in prop::sample::select(vec!["", "k", "m", "g", "K", "M", "G"])) {
        let size: TmpfsSize = format!("{n}{unit}").parse().unwrap();
        prop_assert_eq!(size.option(), format!("size={n}{}", unit.to_lowercase()));
    }

    #[test]
    fn any_published_port_parses_or_fails_in_one_line(text in any_input()) {
        match text.parse::<Publish>() {
            Ok(publish) => {
                prop_assert!(publish.host > 0 && publish.container > 0);
                prop_assert_eq!(publish.to_string().parse::<Publish>().unwrap(), publish);
            }
            Err(e) => expect_one_printable_line(&e),
        }
    }
}
