"""Pydantic models of WB API payloads, as documented ([COMM], [PROD]); not database tables.

Every model tolerates extra fields (WB adds fields often) and `null` where WB's examples show strings or
lists. Field names are snake_case; aliases are WB's spelling (`nmId` in feedbacks, `nmID` in cards).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel


def _none_to_empty_str(value: Any) -> Any:
    return "" if value is None else value


def _none_to_empty_list(value: Any) -> Any:
    return [] if value is None else value


Text = Annotated[str, BeforeValidator(_none_to_empty_str)]

FeedbackOrder = Literal["dateAsc", "dateDesc"]


class WBModel(BaseModel):
    model_config = ConfigDict(
        extra="allow", populate_by_name=True, alias_generator=to_camel, frozen=True, serialize_by_alias=True
    )


class Ping(WBModel):
    ts: str = Field(alias="TS")
    status: str = Field(alias="Status")


# --- feedbacks -----------------------------------------------------------------------------------------


class FeedbackAnswer(WBModel):
    text: Text = ""
    state: Text = ""  # none | wbRu (shown) | reviewRequired (in moderation) | rejected
    editable: bool = False


class ProductDetails(WBModel):
    nm_id: int = Field(alias="nmId")
    imt_id: int | None = None
    product_name: Text = ""
    supplier_article: Text = ""  # the seller's article (vendorCode)
    supplier_name: Text = ""
    brand_name: Text = ""
    size: Text = ""  # the card's techSize


class PhotoLink(WBModel):
    full_size: Text = ""
    mini_size: Text = ""


class FeedbackVideo(WBModel):
    preview_image: Text = ""
    link: Text = ""
    duration_sec: int | None = None


class Feedback(WBModel):
    """One buyer review. There is no barcode, no order id and no buyer id in it (see docs)."""

    id: str
    text: Text = ""
    pros: Text = ""
    cons: Text = ""
    product_valuation: int | None = None  # stars, 1..5
    created_date: datetime
    answer: FeedbackAnswer | None = None
    state: Text = ""  # none (new) | wbRu (processed)
    product_details: ProductDetails
    photo_links: Annotated[list[PhotoLink], BeforeValidator(_none_to_empty_list)] = []
    video: FeedbackVideo | None = None
    user_name: Text = ""  # a first name: the only buyer identifier WB gives
    matching_size: Text = ""  # '' | ok | smaller | bigger
    was_viewed: bool = False
    bables: Annotated[list[str], BeforeValidator(_none_to_empty_list)] = []  # buyer's tags
    is_able_return_product_orders: bool = False
    last_order_shk_id: int | None = None  # WB's per-unit id, NOT the seller's EAN barcode
    last_order_created_at: datetime | None = None
    subject_id: int | None = None
    subject_name: Text = ""
    color: Text = ""
    parent_feedback_id: str | None = None
    child_feedback_id: str | None = None

    @property
    def nm_id(self) -> int:
        return self.product_details.nm_id

    @property
    def answer_text(self) -> str:
        return self.answer.text if self.answer else ""

    @property
    def is_answered(self) -> bool:
        return bool(self.answer_text.strip())


class FeedbacksPage(WBModel):
    count_unanswered: int = 0
    count_archive: int = 0
    feedbacks: Annotated[list[Feedback], BeforeValidator(_none_to_empty_list)]


class UnansweredCount(WBModel):
    count_unanswered: int
    count_unanswered_today: int = 0


class NewFeedbacksQuestions(WBModel):
    has_new_questions: bool
    has_new_feedbacks: bool


# --- content: product cards -------------------------------------------------------------------------


class CardSize(WBModel):
    chrt_id: int | None = Field(default=None, alias="chrtID")
    tech_size: Text = ""  # matches a feedback's productDetails.size
    wb_size: Text = ""  # matches a chat goodCard.size; often absent
    skus: Annotated[list[str], BeforeValidator(_none_to_empty_list)] = []  # the barcodes


class Card(WBModel):
    nm_id: int = Field(alias="nmID")
    imt_id: int | None = Field(default=None, alias="imtID")
    nm_uuid: Text = Field(default="", alias="nmUUID")
    subject_id: int | None = Field(default=None, alias="subjectID")
    subject_name: Text = ""
    vendor_code: Text = ""  # seller's article
    brand: Text = ""
    title: Text = ""
    description: Text = ""
    sizes: Annotated[list[CardSize], BeforeValidator(_none_to_empty_list)] = []
    created_at: Text = ""
    updated_at: Text = ""  # kept verbatim: the paging cursor must be copied back exactly


class CardsCursor(WBModel):
    """The cards paging cursor. Save it after a full sync to fetch only newer changes next time."""

    updated_at: str | None = None
    nm_id: int | None = Field(default=None, alias="nmID")
    total: int = 0

    def as_request(self, limit: int) -> dict[str, Any]:
        out: dict[str, Any] = {"limit": limit}
        if self.updated_at is not None and self.nm_id is not None:
            out["updatedAt"] = self.updated_at
            out["nmID"] = self.nm_id
        return out


class CardsPage(WBModel):
    cards: Annotated[list[Card], BeforeValidator(_none_to_empty_list)]
    cursor: CardsCursor


class _Plain(BaseModel):
    """Our own result models (not WB payloads): plain snake_case fields."""

    model_config = ConfigDict(frozen=True)


class SizeBarcodes(_Plain):
    chrt_id: int | None = None
    tech_size: str = ""
    wb_size: str = ""
    skus: list[str] = []


class CardBarcodes(_Plain):
    """A card reduced to what barcode checks need."""

    nm_id: int
    vendor_code: str
    title: str
    brand: str
    sizes: list[SizeBarcodes]

    @classmethod
    def from_card(cls, card: Card) -> CardBarcodes:
        return cls(
            nm_id=card.nm_id,
            vendor_code=card.vendor_code,
            title=card.title,
            brand=card.brand,
            sizes=[
                SizeBarcodes(chrt_id=s.chrt_id, tech_size=s.tech_size, wb_size=s.wb_size, skus=list(s.skus))
                for s in card.sizes
            ],
        )

    @property
    def barcodes(self) -> list[str]:
        return [sku for size in self.sizes for sku in size.skus]


class BarcodeMatch(_Plain):
    """Which of the seller's cards and sizes a barcode belongs to."""

    barcode: str
    nm_id: int
    chrt_id: int | None
    tech_size: str
    wb_size: str
    vendor_code: str
    title: str
    brand: str


# --- buyer chat ([COMM] buyersChat) ---------------------------------------------------------------------


class GoodCard(WBModel):
    """The product / order card of a chat (`Listing`): `rid` is the order id (`srid` in orders, sales and
    return claims), `size` the card's `wbSize`."""

    nm_id: int = Field(alias="nmID")
    price: int | None = None  # what the buyer paid, after all discounts
    price_currency: Text = ""
    rid: Text = ""
    size: Text = ""

    def as_context(self) -> dict[str, Any]:
        """Our own names, for the conversation's variables and the inbox."""
        return {
            "nm_id": self.nm_id,
            "price": self.price,
            "currency": self.price_currency,
            "order_id": self.rid,
            "size": self.size,
        }


class ChatLastMessage(WBModel):
    text: Text = ""
    add_timestamp: int | None = None


class ChatInfo(WBModel):
    """One chat of `GET /api/v1/seller/chats`."""

    chat_id: str = Field(alias="chatID", min_length=1, max_length=200)
    reply_sign: Text = ""
    client_name: Text = ""
    good_card: GoodCard | None = None
    last_message: ChatLastMessage | None = None


class ChatsList(WBModel):
    result: Annotated[list[ChatInfo], BeforeValidator(_none_to_empty_list)]


class ChatFile(WBModel):
    content_type: Text = ""
    date: Text = ""
    download_id: Text = Field(default="", alias="downloadID")
    name: Text = ""
    url: Text = ""
    size: int | None = None


class ChatImage(WBModel):
    date: Text = ""
    download_id: Text = Field(default="", alias="downloadID")
    url: Text = ""


class ChatAttachments(WBModel):
    good_card: GoodCard | None = None
    files: Annotated[list[ChatFile], BeforeValidator(_none_to_empty_list)] = []
    images: Annotated[list[ChatImage], BeforeValidator(_none_to_empty_list)] = []


class ChatMessage(WBModel):
    text: Text = ""
    attachments: ChatAttachments | None = None


class ChatEvent(WBModel):
    """One event of `GET /api/v1/seller/events` (only `message` events exist today)."""

    chat_id: str = Field(alias="chatID", min_length=1, max_length=200)
    event_id: str = Field(alias="eventID", min_length=1, max_length=160)
    event_type: Text = ""
    is_new_chat: bool = False
    message: ChatMessage | None = None
    source: Text = ""
    add_timestamp: int | None = None
    add_time: Text = ""
    reply_sign: Text = ""  # only on the first event of a new chat
    sender: Text = ""  # client | seller | wb
    client_name: Text = ""


class ChatEventsPage(WBModel):
    """`result` of the events call: `next` goes into the following request; `events` may be empty."""

    next: int | None = None
    newest_event_time: Text = ""
    oldest_event_time: Text = ""
    total_events: int = 0
    events: Annotated[list[Any], BeforeValidator(_none_to_empty_list)] = []  # read one by one (`ChatEvent`)


class SentMessage(WBModel):
    add_time: int | None = None
    chat_id: Text = Field(default="", alias="chatID")
    sign: Text = ""
