"""Built-in detectors, one module per family, each behind the small ``Detector`` protocol of ``base``."""

from __future__ import annotations

from .base import Anchored, Detector, Literal, RegexDetector, Search, Trigger
from .email import EMAIL
from .national_id import US_SSN
from .network import IPV4, IPV6
from .payment import CREDIT_CARD, IBAN
from .phone import PHONE
from .tokens import API_KEY, BEARER_TOKEN, JWT, PASSWORD

__all__ = ["DETECTORS", "Anchored", "Detector", "Literal", "RegexDetector", "Search", "Trigger"]

#: Every built-in detector by the name a configuration switches it on with.
DETECTORS: dict[str, Detector] = {
    detector.name: detector
    for detector in (EMAIL, PHONE, CREDIT_CARD, IBAN, US_SSN, IPV4, IPV6, JWT, BEARER_TOKEN, API_KEY, PASSWORD)
}
