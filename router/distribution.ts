/** How an address spreads messages over its consumers (qdrouterd's `distribution`). */
export type Distribution = 'closest' | 'balanced' | 'multicast';
