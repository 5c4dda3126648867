"""Finance: receipts, statements, exports, reconciliation and offline gifts."""
