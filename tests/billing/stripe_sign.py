"""Signs a Stripe webhook payload with Stripe's official library, for tests/it/billing.rs.

usage: stripe_sign.py SECRET TIMESTAMP < payload   ->   prints a Stripe-Signature header

The signature is computed by stripe-python's own code (`WebhookSignature._compute_signature`,
what Stripe's servers and its test helpers compute) and checked with its public
`WebhookSignature.verify_header` before it is printed, so the header is one Stripe's
library accepts.
"""

import sys

import stripe

secret, timestamp = sys.argv[1], int(sys.argv[2])
payload = sys.stdin.buffer.read().decode("utf-8")
signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{payload}", secret)
header = f"t={timestamp},{stripe.WebhookSignature.EXPECTED_SCHEME}={signature}"
# No tolerance here: the tests also sign deliveries that are meant to be stale.
stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=None)
print(header)
