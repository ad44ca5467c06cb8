//! The neighbourhood's P2P market: a uniform-price double auction per
//! interval, as a native state transition.
//!
//! Prosumers offer their surplus (asks: whole kWh at a minimum price);
//! consumers bid for their demand (whole kWh at a maximum price). Prices
//! are bounded by the tariffs: no one sells below the feed-in tariff (the
//! grid pays that) nor buys above the grid tariff (the grid sells at that),
//! so every order is clamped into `[feed-in, grid]`.
//!
//! Clearing: bids by price descending, asks by price ascending (ties by
//! account id, so the outcome is deterministic); the traded quantity is the
//! largest `Q` such that the `Q`-th kWh's bid price is at least its ask
//! price. Prices are integers [µ-currency/kWh], so every validator computes
//! the same clearing. Everyone trades at one price, the midpoint of the last matched
//! bid and ask (a k = ½ double auction), which lies between every matched
//! buyer's limit and every matched seller's ask. Fills pair the sorted
//! orders in sequence, so at most one bid and one ask are partly filled.

use super::tx::AccountId;

/// An order: an account, a quantity and a price limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Order {
    /// Who.
    pub account: AccountId,
    /// How much [kWh].
    pub kwh: u64,
    /// Limit price [µ-currency/kWh]: the most a buyer pays, the least a
    /// seller takes.
    pub price: u64,
}

/// A trade.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trade {
    /// Seller.
    pub seller: AccountId,
    /// Buyer.
    pub buyer: AccountId,
    /// Quantity [kWh].
    pub kwh: u64,
}

/// The outcome of one interval's auction.
#[derive(Clone, Debug, PartialEq)]
pub struct Clearing {
    /// Quantity traded [kWh].
    pub kwh: u64,
    /// The uniform price [µ-currency/kWh], if anything traded.
    pub price: Option<u64>,
    /// The trades.
    pub trades: Vec<Trade>,
}

/// The tariffs that bound the market.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tariffs {
    /// What the grid pays for exported energy [µ-currency/kWh].
    pub feed_in: u64,
    /// What the grid charges for imported energy [µ-currency/kWh].
    pub grid: u64,
}

/// Clears one interval.
pub fn clear(bids: &[Order], asks: &[Order], t: Tariffs) -> Clearing {
    let clamp = |o: &Order| Order {
        price: o.price.clamp(t.feed_in, t.grid.max(t.feed_in)),
        ..*o
    };
    let mut b: Vec<Order> = bids.iter().filter(|o| o.kwh > 0).map(clamp).collect();
    let mut a: Vec<Order> = asks.iter().filter(|o| o.kwh > 0).map(clamp).collect();
    b.sort_by(|x, y| y.price.cmp(&x.price).then(x.account.cmp(&y.account)));
    a.sort_by(|x, y| x.price.cmp(&y.price).then(x.account.cmp(&y.account)));
    let (mut i, mut j) = (0, 0);
    let (mut left_b, mut left_a) = (
        b.first().map_or(0, |o| o.kwh),
        a.first().map_or(0, |o| o.kwh),
    );
    let mut trades: Vec<Trade> = Vec::new();
    let mut total = 0;
    let mut last = None;
    while i < b.len() && j < a.len() && b[i].price >= a[j].price {
        let q = left_b.min(left_a);
        match trades.last_mut() {
            Some(tr) if tr.seller == a[j].account && tr.buyer == b[i].account => tr.kwh += q,
            _ => trades.push(Trade {
                seller: a[j].account,
                buyer: b[i].account,
                kwh: q,
            }),
        }
        total += q;
        last = Some((b[i].price, a[j].price));
        left_b -= q;
        left_a -= q;
        if left_b == 0 {
            i += 1;
            left_b = b.get(i).map_or(0, |o| o.kwh);
        }
        if left_a == 0 {
            j += 1;
            left_a = a.get(j).map_or(0, |o| o.kwh);
        }
    }
    Clearing {
        kwh: total,
        // The midpoint, rounded down to a whole µ-unit (still ≥ the ask).
        price: last.map(|(pb, pa)| pa + (pb - pa) / 2),
        trades,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T: Tariffs = Tariffs {
        feed_in: 80_000,
        grid: 300_000,
    };

    fn o(a: u32, kwh: u64, price: u64) -> Order {
        Order {
            account: AccountId(a),
            kwh,
            price,
        }
    }

    #[test]
    fn a_textbook_auction_clears_at_the_marginal_midpoint() {
        // Demand: 5 kWh at 0.25, 5 at 0.20, 5 at 0.12.
        // Supply: 4 kWh at 0.10, 4 at 0.15, 10 at 0.22.
        let bids = [o(10, 5, 250_000), o(11, 5, 200_000), o(12, 5, 120_000)];
        let asks = [o(1, 4, 100_000), o(2, 4, 150_000), o(3, 10, 220_000)];
        let c = clear(&bids, &asks, T);
        // 8 kWh: the 9th would need a bid of 0.20 to meet an ask of 0.22.
        assert_eq!(c.kwh, 8);
        // The last match is bid 0.20 against ask 0.15.
        assert_eq!(c.price, Some(175_000));
        assert_eq!(
            c.trades,
            vec![
                Trade {
                    seller: AccountId(1),
                    buyer: AccountId(10),
                    kwh: 4
                },
                Trade {
                    seller: AccountId(2),
                    buyer: AccountId(10),
                    kwh: 1
                },
                Trade {
                    seller: AccountId(2),
                    buyer: AccountId(11),
                    kwh: 3
                },
            ]
        );
    }

    #[test]
    fn orders_are_clamped_to_the_tariffs() {
        // A bid above the grid tariff pays no more than it; an ask below
        // feed-in asks feed-in.
        let c = clear(&[o(10, 3, 9_000_000)], &[o(1, 3, 0)], T);
        assert_eq!(c.kwh, 3);
        assert_eq!(c.price, Some((300_000 + 80_000) / 2));
        // Nothing crosses: nothing trades.
        let c = clear(&[o(10, 3, 90_000)], &[o(1, 3, 250_000)], T);
        assert_eq!((c.kwh, c.price), (0, None));
    }

    proptest! {
        /// Whatever the orders: no one trades beyond their quantity, every
        /// matched buyer's limit is at least the price and every matched
        /// seller's at most it, the price lies within the tariffs, and the
        /// quantity is the largest at which demand meets supply.
        #[test]
        fn clearing_is_individually_rational_and_maximal(
            bids in proptest::collection::vec((1u64..20, 0u64..400_000), 0..12),
            asks in proptest::collection::vec((1u64..20, 0u64..400_000), 0..12),
        ) {
            let bids: Vec<Order> = bids.iter().enumerate().map(|(k, &(q, p))| o(100 + k as u32, q, p)).collect();
            let asks: Vec<Order> = asks.iter().enumerate().map(|(k, &(q, p))| o(k as u32, q, p)).collect();
            let c = clear(&bids, &asks, T);
            let lim = |v: &[Order], a: AccountId| v.iter().find(|x| x.account == a).map(|x| x.price.clamp(T.feed_in, T.grid)).unwrap();
            let mut bought = std::collections::BTreeMap::new();
            let mut sold = std::collections::BTreeMap::new();
            for tr in &c.trades {
                let p = c.price.unwrap();
                prop_assert!(lim(&bids, tr.buyer) >= p);
                prop_assert!(lim(&asks, tr.seller) <= p);
                *bought.entry(tr.buyer).or_insert(0u64) += tr.kwh;
                *sold.entry(tr.seller).or_insert(0u64) += tr.kwh;
            }
            for (a, q) in &bought {
                prop_assert!(*q <= bids.iter().find(|x| x.account == *a).unwrap().kwh);
            }
            for (a, q) in &sold {
                prop_assert!(*q <= asks.iter().find(|x| x.account == *a).unwrap().kwh);
            }
            prop_assert_eq!(c.kwh, c.trades.iter().map(|t| t.kwh).sum::<u64>());
            if let Some(p) = c.price {
                prop_assert!((T.feed_in..=T.grid).contains(&p));
            }
            // Maximal: demand at or above the price meets supply at or
            // below it, one more kWh would not cross.
            let unit = |v: &[Order], desc: bool| {
                let mut u: Vec<u64> = v.iter().flat_map(|x| std::iter::repeat_n(x.price.clamp(T.feed_in, T.grid), x.kwh as usize)).collect();
                u.sort_by(|a, b| if desc { b.cmp(a) } else { a.cmp(b) });
                u
            };
            let (ub, ua) = (unit(&bids, true), unit(&asks, false));
            let q = c.kwh as usize;
            if q < ub.len() && q < ua.len() {
                prop_assert!(ub[q] < ua[q]);
            }
        }
    }
}
