"""Every bound the provider enforces, in one import-light place.

The hook, the connection rules and the DAGs built on them read these numbers, so a task's
``execution_timeout`` and the README's request budget cannot drift from what the hook does.
Nothing here imports more than the standard library: DAG files import it at every parse.
"""

from __future__ import annotations

#: Largest decoded answer the hook reads. Kalshi's answers to the calls the provider makes are
#: well under 1 KiB (a total and a few shards); 64 KiB leaves room for a breakdown of hundreds
#: of exchanges or a verbose proxy error page, and keeps a hostile or broken server (a 300 MB
#: body, a gzip bomb that inflates to gigabytes) from costing more than that in memory.
MAX_BODY_BYTES = 64 * 1024

#: Largest private key PEM accepted, from any field or file. Kalshi issues 2048-bit RSA keys
#: (about 1.7 KiB as PEM); a 4096-bit or passphrase-encrypted one is about 3.4 KiB. 8 KiB leaves
#: room for escaped line breaks and stray whitespace and bounds the work a pasted text can cost
#: the API server's Test button.
MAX_PEM_BYTES = 8 * 1024

#: Most work a passphrase-encrypted key may ask for before it is opened. Opening one runs the key
#: derivation its own DER names, in a C call that no ``execution_timeout`` interrupts, on every task
#: try and every Test click in the API server; so the parameters are read first and a key beyond
#: these is refused (``kalshi_provider.key_encryption``).
#:
#: Iterations of PBKDF2 (and of the older PKCS#5 v1 / PKCS#12 schemes). OpenSSL 3's ``pkcs8 -topk8``
#: and ``genpkey`` and cryptography's ``BestAvailableEncryption`` write 2,048; OWASP's 2023 advice,
#: the most anyone asks for, is 600,000 (SHA-256) to 1,300,000 (SHA-1). 2,000,000 is above both and
#: costs at most about 3 s of one core (SHA-512); 2**31 costs minutes, 2**32 crashes the library.
MAX_KEY_KDF_ITERATIONS = 2_000_000
#: Memory one scrypt derivation needs (128 * r * N bytes). OpenSSL's ``pkcs8 -scrypt`` writes
#: N=2**14, r=8 (16 MiB) and refuses to write or read a key that needs more than 32 MiB; 64 MiB is
#: twice that. N=2**18 would cost 256 MiB, N=2**20 1 GiB.
MAX_KEY_SCRYPT_MEMORY_BYTES = 64 * 1024 * 1024
#: scrypt's parallelism p multiplies its time; every tool writes 1.
MAX_KEY_SCRYPT_PARALLELISM = 4
#: A derived key longer than any cipher's (AES-256 takes 32 bytes) only multiplies PBKDF2's work.
MAX_KEY_DERIVED_BYTES = 64

#: Longest API key ID accepted. Kalshi's key IDs are UUIDs (36 characters).
MAX_KEY_ID_LENGTH = 128

#: Longest Base URL accepted (a URL, never a document).
MAX_HOST_LENGTH = 2048

#: Longest ``private_key_path`` accepted (Linux's PATH_MAX).
MAX_KEY_PATH_LENGTH = 4096

#: Default, and largest, wall-clock time one attempt may take: connect, send, headers and the
#: whole body (the connection's ``timeout`` extra, in seconds).
DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_TIMEOUT_SECONDS = 60.0

#: Retries within one call (the connection's ``max_retries`` extra): the hook owns faults that
#: clear within seconds (a dropped connection, a 5xx blip, Kalshi's per-second rate limit).
DEFAULT_MAX_RETRIES = 2
MAX_RETRIES_LIMIT = 4

#: Back-off between the attempts of one call: 0.5 s doubling, plus up to 1 s of jitter, each
#: wait at most 10 s.
INITIAL_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 10.0
BACKOFF_JITTER_SECONDS = 1.0

#: A Retry-After up to this long is waited for; a longer one ends the call's retries at once
#: (the caller, e.g. the task's own retry, decides what happens later).
MAX_RETRY_AFTER_SECONDS = 30.0

#: Wall-clock bound of one call of the hook, all attempts and waits included.
CALL_DEADLINE_SECONDS = 120.0
#: The same for the list of every subaccount's balance, the fetch's third and least needed call:
#: shorter, so a run whose every call hangs on every try still ends before the next hour.
SUBACCOUNTS_CALL_DEADLINE_SECONDS = 30.0

#: What a task spends outside its calls: looking up the connection, loading the key, writing the
#: XCom. Generous: it only has to keep a hung call from holding the task for ever. A task's
#: ``execution_timeout`` is its calls' deadlines plus this.
TASK_OVERHEAD_SECONDS = 60.0

#: Wall-clock bound of one unauthenticated read of ``/exchange/status`` or ``/exchange/schedule``
#: (one attempt, no retry): the connection's ``timeout`` if shorter. A status read happens only
#: after a signed call failed, so it must not add much to a call already in trouble.
EXCHANGE_READ_SECONDS = 10.0
#: Largest ``/exchange/schedule`` answer read: Kalshi's holds a few weekly schedules and windows
#: (a few KiB); 256 KiB leaves room for years of windows and refuses a flood.
MAX_SCHEDULE_BYTES = 256 * 1024
#: Most maintenance windows a schedule may list, and the longest one believed. Kalshi's weekly window
#: is 2 hours; a window of days would silence the quality check's missing-hour alerts for days, so
#: a schedule with one is refused whole (missing hours then alert as usual).
MAX_MAINTENANCE_WINDOWS = 2000
MAX_MAINTENANCE_WINDOW_HOURS = 24
