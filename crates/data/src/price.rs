//! The price-level rule, stated once: training (every importer) and serving (the feature
//! encoder of `sessionrank-core`, the HTTP API, the browser package) all turn a price into a
//! level here, so the model never sees one scale in training and another in production.

/// Highest price level. Levels are `floor(log2(price + 1))` buckets `0..=MAX_PRICE_LEVEL`, the
/// scale the Diginetica metadata already uses (its prices are levels 0..13). The model's price
/// embedding needs `MAX_PRICE_LEVEL + 2` rows: the encoder stores `level + 1`, so that 0 means
/// unknown.
pub const MAX_PRICE_LEVEL: u8 = 15;

/// Price (in the shop's currency) → price level `floor(log2(price + 1))`, capped at
/// [`MAX_PRICE_LEVEL`]. `None` for NaN, infinite and negative prices.
pub fn price_level(price: f64) -> Option<u8> {
    if !price.is_finite() || price < 0.0 {
        return None;
    }
    Some((price + 1.0).log2().floor().clamp(0.0, f64::from(MAX_PRICE_LEVEL)) as u8)
}

/// A level given directly (a source that already stores levels, a stored row, a caller of the
/// API) capped at [`MAX_PRICE_LEVEL`].
pub fn cap_price_level(level: u8) -> u8 {
    level.min(MAX_PRICE_LEVEL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_levels() {
        assert_eq!(price_level(0.0), Some(0));
        assert_eq!(price_level(1.0), Some(1));
        assert_eq!(price_level(2.0), Some(1));
        assert_eq!(price_level(3.0), Some(2));
        assert_eq!(price_level(1e9), Some(MAX_PRICE_LEVEL));
        assert_eq!(price_level(f64::MAX), Some(MAX_PRICE_LEVEL));
        assert_eq!(price_level(-1.0), None);
        assert_eq!(price_level(f64::NAN), None);
        assert_eq!(price_level(f64::INFINITY), None);
        assert_eq!(cap_price_level(3), 3);
        assert_eq!(cap_price_level(200), MAX_PRICE_LEVEL);
    }
}
