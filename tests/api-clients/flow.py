"""An exchange's deposits and withdrawals, written as a new user would: against the Python client
generated from docs/openapi.json (imported as `doin_client`), signing with the independent
signer of tests/interop (written from docs/transactions.md alone).

    python flow.py BASE_URL KEYS_DIR

The devnet's `account-0` is the exchange's wallet and `account-1` to `account-3` its customers;
`account-1` deposits and then withdraws. Each step checks what an exchange relies on: a deposit
reads as credited once final, a withdrawal's dry run says it would be accepted and whose balances
it moves, a withdrawal sent twice is one transaction, a mistake answers a problem that says
whether sending it again could help and what to fix (`expected_nonce`), a batch of withdrawals
is one transaction paying each customer, and the books add up: the exchange's balance moves by
exactly the withdrawals and the fees the node reports, and, walking the exchange's account
operations from genesis (coinbase credits, fees and tips included), credits minus debits are the
node's balance after every block.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

from doin_client import Client
from doin_client.api.main_chain import list_main_blocks
from doin_client.api.transfer_chain import (
    account_operations,
    chain_info,
    fee_estimate,
    get_account,
    get_tx,
    simulate_tx,
    submit_tx,
)
from doin_client.models import ProblemDoc, SubmitRequest

HERE = Path(__file__).resolve().parent
SIGNER = HERE.parent / "interop" / "sign_transfer.mjs"
FINAL = ("final", "anchored")


def fail(message):
    print(f"FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def key(keys_dir, name):
    return json.loads((Path(keys_dir) / f"{name}.json").read_text())


def sign(chain_id, secret, nonce, fees, to_key, amount, outputs=None):
    """A transfer of `amount` to `to_key`, or with `outputs` [(key, amount)] a batch payment."""
    spec = {
        "chain_id": chain_id,
        "secret_key": secret,
        "nonce": str(nonce),
        "max_fee_per_weight": fees.max_fee_per_weight,
        "max_priority_fee_per_weight": fees.max_priority_fee_per_weight,
    }
    if outputs is None:
        spec.update({"to": to_key, "amount": str(amount)})
    else:
        spec["outputs"] = [{"to": to, "amount": str(a)} for to, a in outputs]
    out = subprocess.run(
        ["node", str(SIGNER), json.dumps(spec)], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout)


def submit(client, tx_hex):
    answer = submit_tx.sync_detailed(client=client, body=SubmitRequest(tx=tx_hex))
    return answer.status_code, answer.parsed


def send(client, chain_id, secret, fees, to_key, amount, nonce):
    """Signs and submits; a nonce the node refuses names the one to use (`expected_nonce`)."""
    signed = sign(chain_id, secret, nonce, fees, to_key, amount)
    status, answer = submit(client, signed["tx"])
    if isinstance(answer, ProblemDoc):
        if answer.type_.endswith(":nonce-too-low") or answer.type_.endswith(":nonce-too-high"):
            if answer.retriable:
                fail(f"a nonce mistake is not retriable: {answer}")
            nonce = int(answer.additional_properties["expected_nonce"])
            signed = sign(chain_id, secret, nonce, fees, to_key, amount)
            status, answer = submit(client, signed["tx"])
        if isinstance(answer, ProblemDoc):
            fail(f"submission refused: {answer.to_dict()}")
    if status != 202 or answer.id != signed["id"]:
        fail(f"expected 202 with id {signed['id']}, got {status} {answer}")
    return signed


def until_final(client, tx_id, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        view = get_tx.sync(client=client, id=tx_id)
        if view is not None and not isinstance(view, ProblemDoc) and view.status in FINAL:
            return view
        time.sleep(0.5)
    fail(f"{tx_id} not final within {seconds} s")


def balance(client, address):
    view = get_account.sync(client=client, address=address)
    if view is None or isinstance(view, ProblemDoc):
        fail(f"account {address}: {view}")
    return int(view.balance)


def operations(client, address):
    """Every operation of `address`, oldest first, page by page."""
    items, cursor = [], None
    while True:
        kwargs = {"order": "oldest", "limit": 50}
        if cursor is not None:
            kwargs["cursor"] = cursor
        page = account_operations.sync(client=client, address=address, **kwargs)
        if page is None or isinstance(page, ProblemDoc):
            fail(f"operations of {address}: {page}")
        page = page.to_dict()
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if cursor is None:
            return items


def reconcile(client, address):
    """The books: credits minus debits, in order, are each `balance_after`, and the node's
    balance after every block with an operation (`?height=`); the total is the balance now."""
    books, checked = 0, 0
    ops = operations(client, address)
    for i, op in enumerate(ops):
        books += int(op["credit"]) - int(op["debit"])
        if int(op["balance_after"]) != books:
            fail(f"operation {op['cursor']} says {op['balance_after']}, the books {books}")
        last_of_block = i + 1 == len(ops) or ops[i + 1]["height"] != op["height"]
        if last_of_block:
            view = get_account.sync(client=client, address=address, height=op["height"])
            if view is None or isinstance(view, ProblemDoc) or int(view.balance) != books:
                fail(f"after block {op['height']} the node says {view}, the books {books}")
            checked += 1
    if balance(client, address) != books:
        fail(f"the balance now is not the books' {books}")
    return ops, checked


def coinbase_payee(client, seconds=90):
    """The address of someone a main block paid, once the transfer chain credited it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        page = list_main_blocks.sync(client=client, limit=20)
        if page is not None and not isinstance(page, ProblemDoc):
            for block in page.to_dict()["items"]:
                for payout in block.get("coinbase", []):
                    address = payout["address"]
                    if any(op["kind"] == "coinbase" for op in operations(client, address)):
                        return address
        time.sleep(1)
    fail(f"no main block's reward was credited on the transfer chain within {seconds} s")


def main():
    base, keys_dir = sys.argv[1], sys.argv[2]
    client = Client(base_url=base, raise_on_unexpected_status=True, timeout=30.0)
    info = chain_info.sync(client=client)
    chain_id = info.chain_id
    fees = fee_estimate.sync(client=client).standard
    exchange, customer = key(keys_dir, "account-0"), key(keys_dir, "account-1")

    # A mistake answers a problem that says what is wrong and that sending it again won't help.
    answer = get_account.sync(client=client, address="not-an-address")
    if not isinstance(answer, ProblemDoc) or answer.retriable:
        fail(f"a malformed address should be a non-retriable problem, got {answer}")

    # Deposit: the customer pays the exchange; the exchange credits it once final.
    amount = 1_234_567
    deposit = send(client, chain_id, customer["secret_key"], fees, exchange["public_key"], amount, 0)
    view = until_final(client, deposit["id"])
    exchange_address = view.payload.to
    if int(view.payload.amount) != amount:
        fail(f"the deposit's amount reads {view.payload.amount}")
    before = balance(client, exchange_address)
    customer_address = view.sender
    customer_before = balance(client, customer_address)

    # Withdrawal: signed once, sent twice (as after a timeout); one transaction either way.
    withdrawal_amount = 765_432
    nonce = get_account.sync(client=client, address=exchange_address).next_nonce
    # A dry run first: it would be accepted, and says whose balances it moves.
    signed = sign(chain_id, exchange["secret_key"], nonce, fees, customer["public_key"],
                  withdrawal_amount)
    dry = simulate_tx.sync(client=client, body=SubmitRequest(tx=signed["tx"]))
    moved = {change.address for change in dry.balance_changes}
    if dry.outcome != "accepted" or exchange_address not in moved or view.sender not in moved:
        fail(f"the dry run of the withdrawal: {dry.to_dict()}")
    withdrawal = send(client, chain_id, exchange["secret_key"], fees, customer["public_key"],
                      withdrawal_amount, nonce)
    status, again = submit(client, withdrawal["tx"])
    if status != 200 or again.id != withdrawal["id"]:
        fail(f"sending the same withdrawal again should answer 200 with its id, got {status} {again}")
    view = until_final(client, withdrawal["id"])
    fee = int(view.fee_paid.total)
    after = balance(client, exchange_address)
    if before - after != withdrawal_amount + fee:
        fail(f"the exchange's balance went from {before} to {after}; "
             f"expected a change of {withdrawal_amount} + fee {fee}")
    if balance(client, view.payload.to) != customer_before + withdrawal_amount:
        fail("the customer was not credited with the withdrawal")

    # A batch of withdrawals: one transaction paying three customers (one of them twice).
    customers = [key(keys_dir, f"account-{i}") for i in (1, 2, 3)]
    payouts = [(customers[0]["public_key"], 1_000), (customers[1]["public_key"], 2_000),
               (customers[2]["public_key"], 3_000), (customers[0]["public_key"], 4_000)]
    nonce = get_account.sync(client=client, address=exchange_address).next_nonce
    batch = sign(chain_id, exchange["secret_key"], nonce, fees, None, None, outputs=payouts)
    dry = simulate_tx.sync(client=client, body=SubmitRequest(tx=batch["tx"]))
    kinds = [op.to_dict()["kind"] for op in dry.operations]
    if dry.outcome != "accepted" or kinds.count("batch_out") != 4 or kinds.count("batch_in") != 4:
        fail(f"the dry run of the batch: {dry.to_dict()}")
    before = balance(client, exchange_address)
    status, answer = submit(client, batch["tx"])
    if status != 202 or answer.id != batch["id"]:
        fail(f"the batch was not accepted: {status} {answer}")
    view = until_final(client, batch["id"])
    if before - balance(client, exchange_address) != 10_000 + int(view.fee_paid.total):
        fail("the exchange's balance did not move by the batch and its fee")

    # Reconciliation from the operations: the exchange's books, and a customer's credits.
    ops, checked = reconcile(client, exchange_address)
    kinds = {op["kind"] for op in ops}
    for needed in ("genesis", "transfer_in", "fee", "transfer_out", "batch_out"):
        if needed not in kinds:
            fail(f"the exchange's operations lack {needed}: {sorted(kinds)}")
    paid = [op for op in operations(client, customer_address)
            if op["kind"] == "batch_in" and op.get("transaction") == batch["id"]]
    if sorted(int(op["credit"]) for op in paid) != [1_000, 4_000]:
        fail(f"the first customer's batch credits: {paid}")
    # Rewards from the main chain are operations too: a payee's books reconcile the same way.
    payee = coinbase_payee(client)
    payee_ops, payee_checked = reconcile(client, payee)
    print(f"deposit {deposit['id'][:16]}… final; withdrawal {withdrawal['id'][:16]}… final, "
          f"fee {fee}; batch {batch['id'][:16]}… paid 4 outputs in one transaction; the "
          f"exchange's {len(ops)} operations reconcile to its balance after each of {checked} "
          f"blocks, and a main-chain payee's {len(payee_ops)} (coinbase credits included) after "
          f"each of {payee_checked}")


if __name__ == "__main__":
    main()
