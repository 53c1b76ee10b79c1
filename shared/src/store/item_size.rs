//! DynamoDB's item size, by its published rules: what write units, read
//! units and the 400 KB item limit are measured in. Pure arithmetic
//! (the storage tests' measure; `infra/fault_proxy.py` applies the same rules to
//! items on the wire, and the bench to items read from moto).

use aws_sdk_dynamodb::types::AttributeValue;

use super::Item;

/// DynamoDB's item size limit (bytes, attribute names included).
pub const ITEM_LIMIT: usize = 400 * 1024;

/// A number's size: 1 byte per two significant digits, plus 1.
fn number_size(raw: &str) -> usize {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    // Stored as mantissa and exponent: zeros at either end are free.
    digits
        .trim_start_matches('0')
        .trim_end_matches('0')
        .len()
        .max(1)
        .div_ceil(2)
        + 1
}

/// The size of a value (without its name).
pub fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        // 3 bytes for the container, 1 per element.
        AttributeValue::L(v) => 3 + v.iter().map(|e| value_size(e) + 1).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, e)| k.len() + value_size(e) + 1)
                .sum::<usize>()
        }
        _ => 0,
    }
}

/// The size of an item: every attribute's name and value.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

/// The write units of writing an item of `bytes` (1 per KB started).
pub fn write_units(bytes: usize) -> usize {
    bytes.div_ceil(1024).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    #[test]
    fn sizes_follow_the_published_rules() {
        let item: Item = [
            ("id".to_string(), s("abc")),                               // 2 + 3
            ("n".to_string(), AttributeValue::N("12345".into())),       // 1 + 3 + 1
            ("b".to_string(), AttributeValue::B(vec![0u8; 10].into())), // 1 + 10
            ("ok".to_string(), AttributeValue::Bool(true)),             // 2 + 1
            (
                "l".to_string(),
                AttributeValue::L(vec![s("xy"), s("z")]), // 1 + 3 + (2+1) + (1+1)
            ),
            (
                "m".to_string(),
                AttributeValue::M([("k".to_string(), s("vv"))].into()), // 1 + 3 + (1+2+1)
            ),
        ]
        .into();
        assert_eq!(item_size(&item), 5 + 5 + 11 + 3 + 9 + 8);
    }

    #[test]
    fn numbers_count_significant_digits() {
        assert_eq!(number_size("0"), 2);
        assert_eq!(number_size("1000000"), 2);
        assert_eq!(number_size("-12.5"), 3);
        assert_eq!(number_size("1764723456789"), 8);
        assert_eq!(number_size("1764720000000"), 4);
    }

    #[test]
    fn write_units_round_up_per_kilobyte() {
        assert_eq!(write_units(1), 1);
        assert_eq!(write_units(1024), 1);
        assert_eq!(write_units(1025), 2);
        assert_eq!(write_units(0), 1);
    }
}
