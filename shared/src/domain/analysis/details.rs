//! Details worth a summary, read from the caller's words: party size,
//! date, time, items. (`summary` turns them into the owner's sentence.)

use serde::{Deserialize, Serialize};

use super::matcher::Token;
use super::Reason;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Details {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<String>,
    /// A money amount the caller named ("$45.20"), for charges and refunds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
}

const UNITS: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [(&str, u32); 7] = [
    ("twenty", 20),
    ("thirty", 30),
    ("forty", 40),
    ("fifty", 50),
    ("sixty", 60),
    ("seventy", 70),
    ("eighty", 80),
];
const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const PEOPLE: [&str; 9] = [
    "people", "persons", "guests", "adults", "ppl", "pax", "of", "folks", "kids",
];
const FOODS: &[&str] = &[
    "pizza",
    "pizzas",
    "pie",
    "pies",
    "burger",
    "burgers",
    "cheeseburger",
    "cheeseburgers",
    "salad",
    "salads",
    "wings",
    "fries",
    "taco",
    "tacos",
    "burrito",
    "burritos",
    "roll",
    "rolls",
    "sandwich",
    "sandwiches",
    "sub",
    "subs",
    "wrap",
    "wraps",
    "soup",
    "soups",
    "pasta",
    "spaghetti",
    "lasagna",
    "calzone",
    "calzones",
    "stromboli",
    "bowl",
    "bowls",
    "noodles",
    "ramen",
    "pho",
    "curry",
    "rice",
    "dumplings",
    "sushi",
    "sashimi",
    "steak",
    "steaks",
    "chicken",
    "nuggets",
    "tenders",
    "cake",
    "cakes",
    "cupcake",
    "cupcakes",
    "cookies",
    "bagel",
    "bagels",
    "croissant",
    "croissants",
    "coffee",
    "coffees",
    "latte",
    "lattes",
    "drinks",
    "sodas",
    "cokes",
    "nachos",
    "quesadilla",
    "quesadillas",
    "enchiladas",
    "gyro",
    "gyros",
    "kebab",
    "kebabs",
    "platter",
    "platters",
    "tray",
    "trays",
    "breadsticks",
    "knots",
    "meatballs",
    "ribs",
    "brisket",
    "shrimp",
    "empanadas",
    "tamales",
    "bao",
    "buns",
    "donuts",
];
const STOP: &[&str] = &[
    "a", "an", "the", "and", "or", "with", "i", "i'd", "i'll", "to", "can", "could", "get", "want",
    "like", "have", "some", "also", "please", "um", "uh", "yeah", "order", "for", "me", "my", "we",
    "us", "just", "gonna", "wanna", "need", "then", "plus", "do", "you", "guys", "it", "that",
    "this", "is", "are", "be", "on", "in", "at", "of", "got", "let", "make", "add", "would",
    "will", "take", "ok", "okay", "so", "hi", "hello", "hey", "oh", "um", "uhh",
];

/// "8pm", "730pm", "30pm" → (digits, meridiem).
fn glued_meridiem(word: &str) -> Option<(&str, &'static str)> {
    let (digits, mer) = if let Some(d) = word.strip_suffix("pm") {
        (d, "pm")
    } else {
        (word.strip_suffix("am")?, "am")
    };
    (!digits.is_empty() && digits.len() <= 4 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then_some((digits, mer))
}

/// "7", "seven", "twenty five" → number, and how many tokens it used.
fn number_at(tokens: &[&Token], i: usize) -> Option<(u32, usize)> {
    let word = tokens.get(i)?.text.as_str();
    if let Ok(n) = word.parse::<u32>() {
        return (n <= 10_000).then_some((n, 1));
    }
    if word == "dozen" {
        return Some((12, 1));
    }
    if word == "hundred" {
        return Some((100, 1));
    }
    if let Some(n) = UNITS.iter().position(|u| *u == word) {
        return Some((n as u32, 1));
    }
    let (_, tens) = TENS.iter().find(|(t, _)| *t == word)?;
    match tokens
        .get(i + 1)
        .and_then(|t| UNITS[1..10].iter().position(|u| *u == t.text))
    {
        Some(unit) => Some((tens + unit as u32 + 1, 2)),
        None => Some((*tens, 1)),
    }
}

fn is(tokens: &[&Token], i: usize, words: &[&str]) -> bool {
    tokens
        .get(i)
        .is_some_and(|t| words.contains(&t.text.as_str()))
}

/// "pm", "p m", "p.m." → "pm"; returns tokens used.
fn meridiem(tokens: &[&Token], i: usize) -> Option<(&'static str, usize)> {
    let t = tokens.get(i)?.text.as_str();
    match t {
        "pm" => Some(("pm", 1)),
        "am" => Some(("am", 1)),
        "p" | "a" if is(tokens, i + 1, &["m"]) => Some((if t == "p" { "pm" } else { "am" }, 2)),
        _ => None,
    }
}

fn find_time(tokens: &[&Token]) -> Option<(String, usize, usize)> {
    for i in 0..tokens.len() {
        let t = &tokens[i].text;
        if t == "noon" {
            return Some(("12 pm".into(), i, 1));
        }
        if t == "midnight" {
            return Some(("12 am".into(), i, 1));
        }
        if let Some((digits, mer)) = glued_meridiem(t) {
            let (h, m) = match digits.len() {
                1 | 2 => (digits, None),
                n => (&digits[..n - 2], Some(&digits[n - 2..])),
            };
            if let Ok(h) = h.parse::<u32>() {
                if (1..=12).contains(&h) {
                    let text = match m {
                        Some(m) => format!("{h}:{m} {mer}"),
                        None => format!("{h} {mer}"),
                    };
                    return Some((text, i, 1));
                }
            }
        }
        let Some((hour, used)) = number_at(tokens, i) else {
            continue;
        };
        let clock_hour = (1..=12).contains(&hour) || (tokens[i].colon_next && hour < 24);
        if !clock_hour {
            continue;
        }
        let mut j = i + used;
        let mut minutes: Option<u32> = None;
        let mut glued: Option<&'static str> = None;
        if tokens[i].colon_next {
            let next = tokens.get(j).map(|m| m.text.as_str()).unwrap_or("");
            let (digits, mer) = glued_meridiem(next).map_or((next, None), |(d, m)| (d, Some(m)));
            minutes = digits.parse().ok().filter(|m| *m < 60 && digits.len() == 2);
            if minutes.is_some() {
                glued = mer;
                j += 1;
            }
        } else if let Some((m, u)) = number_at(tokens, j) {
            // "seven thirty", "eight forty five"
            if (10..60).contains(&m) && !is(tokens, j + u, &PEOPLE) {
                minutes = Some(m);
                j += u;
            }
        }
        let mer = glued.map(|m| (m, 0)).or_else(|| meridiem(tokens, j));
        let oclock = is(tokens, j, &["o'clock", "oclock"]);
        let evening = is(tokens, j, &["tonight", "tomorrow"]);
        let after_at = i > 0 && is(tokens, i - 1, &["at", "around", "by", "about", "like"]);
        // A bare number is a time only with a marker: am/pm, o'clock,
        // "at 7" (not "at 7 people"), or "seven thirty tonight".
        let at_time = after_at && !is(tokens, j, &PEOPLE);
        let marked = mer.is_some() || oclock || at_time || (minutes.is_some() && evening);
        if !marked {
            continue;
        }
        let mut text = match minutes {
            Some(m) => format!("{hour}:{m:02}"),
            None => hour.to_string(),
        };
        if let Some((m, u)) = mer {
            text.push(' ');
            text.push_str(m);
            j += u;
        } else if oclock {
            j += 1;
        }
        return Some((text, i, j - i));
    }
    None
}

fn find_date(tokens: &[&Token]) -> Option<String> {
    for (i, t) in tokens.iter().enumerate() {
        let w = t.text.as_str();
        match w {
            "today" | "tonight" => return Some(w.into()),
            "tomorrow" => {
                return Some(if is(tokens, i + 1, &["night", "evening"]) {
                    "tomorrow night".into()
                } else {
                    "tomorrow".into()
                })
            }
            "weekend" if i > 0 && is(tokens, i - 1, &["this", "next"]) => {
                return Some(format!("{} weekend", tokens[i - 1].text))
            }
            _ => {}
        }
        let day = w.strip_suffix('s').unwrap_or(w);
        if let Some(d) = WEEKDAYS.iter().find(|d| **d == day) {
            let name = capitalize(d);
            return Some(if i > 0 && is(tokens, i - 1, &["next"]) {
                format!("next {name}")
            } else {
                format!("on {name}")
            });
        }
        if let Some(m) = MONTHS.iter().find(|m| **m == w) {
            // "may" is only a month when a day follows ("may I…" is not).
            if let Some(n) = tokens.get(i + 1).and_then(|n| ordinal(&n.text)) {
                return Some(format!("on {} {n}", capitalize(m)));
            }
        }
        if i > 0
            && is(tokens, i - 1, &["the"])
            && w.len() > 2
            && ["st", "nd", "rd", "th"].iter().any(|s| w.ends_with(s))
        {
            if let Some(n) = ordinal(w) {
                return Some(format!("on the {n}{}", &w[w.len() - 2..]));
            }
        }
    }
    None
}

fn ordinal(w: &str) -> Option<u32> {
    let digits = w.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    digits.parse::<u32>().ok().filter(|d| (1..=31).contains(d))
}

fn capitalize(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// A headcount stated as "N people" / "for N" / "party of N", if any.
pub fn headcount(tokens: &[&Token]) -> Option<u32> {
    let span = find_time(tokens).map(|(_, s, n)| (s, n));
    find_party(tokens, span, Reason::Catering)
}

fn find_party(tokens: &[&Token], time_span: Option<(usize, usize)>, reason: Reason) -> Option<u32> {
    let in_time = |k: usize| time_span.is_some_and(|(s, n)| k >= s && k < s + n);
    for i in 0..tokens.len() {
        let lead = is(
            tokens,
            i,
            &[
                "party",
                "group",
                "table",
                "reservation",
                "res",
                "booking",
                "team",
            ],
        ) && is(tokens, i + 1, &["of", "for"]);
        if lead && !in_time(i + 2) {
            if let Some((n, u)) = number_at(tokens, i + 2) {
                if (1..=500).contains(&n)
                    && meridiem(tokens, i + 2 + u).is_none()
                    && !tokens[i + 2].colon_next
                {
                    return Some(n);
                }
            }
        }
        if let Some((n, u)) = number_at(tokens, i) {
            if in_time(i) || !(1..=500).contains(&n) {
                continue;
            }
            let next = i + u;
            if is(
                tokens,
                next,
                &[
                    "people", "persons", "guests", "adults", "ppl", "pax", "folks",
                ],
            ) || (is(tokens, next, &["of"]) && is(tokens, next + 1, &["us"]))
            {
                return Some(n);
            }
            let after_for = i > 0 && is(tokens, i - 1, &["for"]);
            // "for twenty minutes", "for 15 dollars" are not headcounts.
            let measure = is(
                tokens,
                next,
                &[
                    "minute", "minutes", "min", "mins", "hour", "hours", "second", "seconds",
                    "day", "days", "week", "weeks", "month", "months", "year", "years", "dollars",
                    "bucks", "percent", "miles", "blocks", "inches",
                ],
            );
            if after_for
                && matches!(reason, Reason::Reservation | Reason::Catering)
                && n <= 40
                && !measure
                && meridiem(tokens, next).is_none()
                && !tokens[i].colon_next
            {
                return Some(n);
            }
        }
    }
    None
}

fn find_items(tokens: &[&Token]) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    for (j, t) in tokens.iter().enumerate() {
        if !FOODS.contains(&t.text.as_str()) {
            continue;
        }
        let mut start = j;
        while start > 0 && j - start < 4 {
            let prev = tokens[start - 1].text.as_str();
            if STOP.contains(&prev) || FOODS.contains(&prev) {
                break;
            }
            start -= 1;
        }
        let words: Vec<String> = tokens[start..=j]
            .iter()
            .map(|t| match number_at(&[t], 0) {
                Some((n, _)) => n.to_string(),
                None => t.text.clone(),
            })
            .collect();
        let item = words.join(" ");
        if !items
            .iter()
            .any(|i| i.ends_with(&item) || item.ends_with(i.as_str()))
        {
            items.push(item);
        }
        if items.len() == 4 {
            break;
        }
    }
    items
}

/// The first money amount in the caller's words: "$45.20", "$12", "45 dollars",
/// "twenty bucks" is left alone (a number word amount is rarely exact).
pub fn find_amount(caller_text: &[&str]) -> Option<String> {
    for text in caller_text {
        let b = text.as_bytes();
        for (i, c) in b.iter().enumerate() {
            if *c == b'$' {
                let digits: String = text[i + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ',')
                    .collect();
                let digits = digits.trim_end_matches(['.', ',']);
                if digits.starts_with(|c: char| c.is_ascii_digit()) {
                    return Some(format!("${digits}"));
                }
            }
        }
        let words: Vec<&str> = text.split_whitespace().collect();
        for w in words.windows(2) {
            let unit = w[1]
                .trim_matches(|c: char| !c.is_alphabetic())
                .to_lowercase();
            if (unit == "dollars" || unit == "bucks") && w[0].parse::<f64>().is_ok() {
                return Some(format!("${}", w[0]));
            }
        }
    }
    None
}

pub fn extract(caller_tokens: &[&Token], caller_text: &[&str], reason: Reason) -> Details {
    let time = find_time(caller_tokens);
    let span = time.as_ref().map(|(_, s, n)| (*s, *n));
    Details {
        party_size: find_party(caller_tokens, span, reason),
        date: find_date(caller_tokens),
        time: time.map(|(t, _, _)| t),
        items: if matches!(reason, Reason::Order | Reason::Delivery | Reason::Catering) {
            find_items(caller_tokens)
        } else {
            Vec::new()
        },
        amount: if matches!(
            reason,
            Reason::Billing | Reason::Complaint | Reason::Order | Reason::Delivery
        ) {
            find_amount(caller_text)
        } else {
            None
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::{analyze, transcript::parse_text};
    use super::*;

    fn details(text: &str) -> Details {
        analyze(&parse_text(text)).details
    }

    #[test]
    fn party_date_and_time() {
        let d = details("Caller: hi can I get a table for six this friday at seven thirty");
        assert_eq!(d.party_size, Some(6));
        assert_eq!(d.date.as_deref(), Some("on Friday"));
        assert_eq!(d.time.as_deref(), Some("7:30"));
        let d = details("Caller: reservation for 8pm tomorrow night, 4 people");
        assert_eq!(
            (d.party_size, d.time.as_deref(), d.date.as_deref()),
            (Some(4), Some("8 pm"), Some("tomorrow night"))
        );
        let d = details("Caller: we'd like to book for the 14th at 7:15 p.m. party of twenty five");
        assert_eq!(
            (d.party_size, d.time.as_deref(), d.date.as_deref()),
            (Some(25), Some("7:15 pm"), Some("on the 14th"))
        );
    }

    #[test]
    fn items_of_an_order() {
        let a = analyze(&parse_text(
            "Caller: I'd like to order two large pepperoni pizzas and a caesar salad for pickup",
        ));
        assert_eq!(a.reason, Reason::Order);
        assert_eq!(
            a.details.items,
            vec!["2 large pepperoni pizzas", "caesar salad"]
        );
        assert_eq!(
            a.summary,
            "Caller placed a pickup order: 2 large pepperoni pizzas and caesar salad."
        );
    }
}
