//! Tests of the reassembler as a whole: the rules one by one
//! ([`rules`]), memory, time and the header facts ([`limits`]), and
//! refragmentation round trips ([`round_trip`]).

mod build;
mod flood;
mod limits;
mod round_trip;
mod rules;
