//! The one-sentence summary an owner reads: the reason, the details that
//! make the call actionable, and how the caller left.

use super::details::Details;
use super::transcript::{Speaker, Turn};
use super::{Reason, SentimentLabel};

fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn when(d: &Details) -> String {
    let mut s = String::new();
    if let Some(date) = &d.date {
        s.push(' ');
        s.push_str(date);
    }
    if let Some(time) = &d.time {
        s.push_str(" at ");
        s.push_str(time);
    }
    s
}

/// A call outside the taxonomy, said in the owner's words, never the
/// caller's (their words are in the transcript).
fn other_summary(says: impl Fn(&[&str]) -> bool) -> &'static str {
    if says(&[
        "left my",
        "lost my",
        "forgot my",
        "lost and found",
        "left it",
        "left a",
    ]) {
        "Caller asked about an item left behind"
    } else if says(&[
        "wrong number",
        "trying to reach",
        "is this not",
        "isn't this",
    ]) {
        "Wrong number: the caller was trying to reach someone else"
    } else if says(&[
        "neighbor",
        "neighbour",
        "next door",
        "live behind",
        "live across",
    ]) {
        "A neighbour called about a problem near the restaurant"
    } else if says(&["donat", "sponsor", "fundrais", "charity", "raffle"]) {
        "Caller asked for a donation or sponsorship"
    } else if says(&[
        "reporter",
        "journalist",
        "newspaper",
        "magazine",
        "podcast",
        "article",
    ]) {
        "A reporter or media outlet called"
    } else if says(&[
        "we offer",
        "we provide",
        "calling from",
        "our company",
        "our service",
        "software",
        "marketing",
        "advertis",
        "partnership",
        "free trial",
        "vendor",
        "supplier",
    ]) {
        "A vendor or salesperson called"
    } else if says(&[
        "compliment",
        "wanted to thank",
        "wanted to say thank",
        "shout out",
    ]) {
        "Caller called to pass on a compliment"
    } else if !says(&[""]) {
        // No caller words at all (a silent or agent-only call).
        "Caller did not say why they called"
    } else {
        "Caller's request did not fit a usual category; see the transcript"
    }
}

/// One sentence for the owner's e-mail and the dashboard.
pub fn summarize(reason: Reason, label: SentimentLabel, d: &Details, turns: &[Turn]) -> String {
    // The caller's words, lower-cased once for every question below.
    let heard: Vec<String> = turns
        .iter()
        .filter(|t| t.role != Speaker::Agent)
        .map(|t| t.message.to_lowercase())
        .collect();
    let says = |words: &[&str]| heard.iter().any(|t| words.iter().any(|w| t.contains(w)));
    let mut s = match reason {
        Reason::Hours => match (&d.time, &d.date) {
            (Some(time), date) => {
                let past = if says(&["past", "after", "until", "till", "late"]) {
                    "past"
                } else {
                    "at"
                };
                let date = date.as_deref().map(|x| format!(" {x}")).unwrap_or_default();
                format!("Caller asked whether you are open {past} {time}{date}")
            }
            (None, Some(date)) => format!("Caller asked about opening hours {date}"),
            (None, None) => "Caller asked about opening hours".to_string(),
        },
        Reason::Reservation => {
            let action = if says(&["cancel"]) {
                "cancel a reservation"
            } else if says(&["change", "move", "reschedul", "push it"]) {
                "change a reservation"
            } else {
                "book a table"
            };
            let party = d
                .party_size
                .map(|n| format!(" for {n}"))
                .unwrap_or_default();
            format!("Caller wanted to {action}{party}{}", when(d))
        }
        Reason::Order => {
            if d.items.is_empty() {
                format!("Caller called about a takeout order{}", when(d))
            } else {
                format!(
                    "Caller placed a pickup order: {}{}",
                    list(&d.items),
                    d.time
                        .as_deref()
                        .map(|t| format!(", for {t}"))
                        .unwrap_or_default()
                )
            }
        }
        Reason::Delivery => {
            if says(&[
                "where", "late", "never", "still", "hasn't", "not here", "haven't",
            ]) {
                "Caller asked about a delivery that had not arrived".to_string()
            } else if d.items.is_empty() {
                "Caller asked about delivery".to_string()
            } else {
                format!("Caller asked about delivering {}", list(&d.items))
            }
        }
        Reason::Menu => {
            let topic = if says(&["gluten", "glutton", "celiac"]) {
                "gluten-free options"
            } else if says(&["vegan", "vegetarian", "plant based"]) {
                "vegan and vegetarian options"
            } else if says(&["allerg", "nut", "dairy", "lactose", "shellfish"]) {
                "allergens in the food"
            } else if says(&["special"]) {
                "the specials"
            } else if says(&["price", "how much", "cost"]) {
                "menu prices"
            } else {
                "the menu"
            };
            format!("Caller asked about {topic}")
        }
        Reason::Location => {
            if says(&["parking", "park "]) {
                "Caller asked about parking".to_string()
            } else {
                "Caller asked for the address or directions".to_string()
            }
        }
        Reason::Catering => {
            let people = d
                .party_size
                .map(|n| format!(" for {n} people"))
                .unwrap_or_default();
            format!("Caller asked about catering{people}{}", when(d))
        }
        Reason::Complaint => {
            let topic = if says(&[
                "rude", "server", "waiter", "waitress", "staff", "attitude", "ignored", "service",
            ]) {
                "the service"
            } else if says(&["dirty", "bug", "roach", "filthy", "mouse"]) {
                "cleanliness"
            } else if says(&["noise", "loud", "music"]) {
                "noise"
            } else if says(&[
                "cold",
                "raw",
                "burnt",
                "undercooked",
                "stale",
                "hair",
                "sick",
                "taste",
                "food",
            ]) {
                "the food"
            } else {
                "a recent visit"
            };
            format!("Caller complained about {topic}")
        }
        Reason::Billing => {
            let what = if says(&["twice", "double"]) {
                "Caller reported being charged twice"
            } else if says(&["refund", "money back"]) {
                "Caller asked about a refund"
            } else if says(&["gift card", "gift certificate"]) {
                "Caller asked about a gift card"
            } else if says(&["receipt", "reciept", "invoice"]) {
                "Caller asked for a receipt or invoice"
            } else {
                "Caller had a question about a bill or charge"
            };
            match &d.amount {
                Some(amount) => format!("{what} ({amount})"),
                None => what.to_string(),
            }
        }
        Reason::Employment => "Caller asked about job openings".to_string(),
        Reason::Other => other_summary(says).to_string(),
    };
    if label == SentimentLabel::Negative && !matches!(reason, Reason::Complaint) {
        s.push_str(" and sounded unhappy");
    }
    s.push('.');
    s
}
