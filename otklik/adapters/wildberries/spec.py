"""Strict models of what WB's published OpenAPI files say its responses are (`09-communications.yaml`:
feedbacks, buyer chat; `02-products.yaml`: the cards list; the gateway's errors), written for otklik from
those files' schemas — field by field, WB's own names, **unknown fields refused**.

They are not what the client parses with (`schemas.py` tolerates new fields, as WB adds them often): they
are the yardstick the fake (`otklik.testing.fake_wb`) is checked against, so a test never passes against a
world that does not exist (`tests/adapters/wildberries/test_wb_spec.py` validates every response the fake
serves). Types follow the files: `nullable: true` becomes `| None`; a field the files do not mark
required stays optional here too, but when present it must have the documented type.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# --- errors ------------------------------------------------------------------------------------------------


class EnvelopeError(Spec):
    """`responseFeedbackQuestionErr`: feedbacks' 400/403/404/422 and the cards list's 403."""

    data: None = None
    error: Literal[True]
    errorText: StrictStr
    additionalErrors: list[StrictStr] | None = None
    requestId: StrictStr | None = None


class ContentError(Spec):
    """The content API's error ([PROD]): the same envelope, `additionalErrors` an object there."""

    data: None = None
    error: Literal[True]
    errorText: StrictStr
    additionalErrors: dict[str, object] | list[StrictStr] | None = None
    requestId: StrictStr | None = None


class FQError(Spec):
    """`standardizedFQError`: the 400 of `POST|PATCH /api/v1/feedbacks/answer`."""

    title: StrictStr
    detail: StrictStr
    requestId: StrictStr
    origin: StrictStr


class GatewayError(Spec):
    """`Response4XX`: the gateway's 401, 403 (token without the category), 429, and the chat's 400s."""

    title: StrictStr
    detail: StrictStr
    code: StrictStr | None = None
    requestId: StrictStr
    origin: StrictStr
    status: StrictInt
    statusText: StrictStr
    timestamp: StrictStr


# --- common ------------------------------------------------------------------------------------------------


class Ping(Spec):
    TS: StrictStr
    Status: Literal["OK"]


# --- feedbacks ---------------------------------------------------------------------------------------------


class _Envelope(Spec):
    error: StrictBool
    errorText: StrictStr
    additionalErrors: list[StrictStr] | None = None


class NewFeedbacksQuestionsData(Spec):
    hasNewQuestions: StrictBool
    hasNewFeedbacks: StrictBool


class NewFeedbacksQuestions(_Envelope):
    data: NewFeedbacksQuestionsData


class CountUnansweredData(Spec):
    countUnanswered: StrictInt
    countUnansweredToday: StrictInt


class CountUnanswered(_Envelope):
    data: CountUnansweredData


class FeedbacksCount(_Envelope):
    data: StrictInt


class FeedbackAnswer(Spec):
    text: StrictStr
    state: Literal["none", "wbRu", "reviewRequired", "rejected"]
    editable: StrictBool


class FeedbackProductDetails(Spec):
    nmId: StrictInt
    imtId: StrictInt
    productName: StrictStr
    supplierArticle: StrictStr | None
    supplierName: StrictStr | None
    brandName: StrictStr | None
    size: StrictStr


class PhotoLink(Spec):
    fullSize: StrictStr
    miniSize: StrictStr


class FeedbackVideo(Spec):
    previewImage: StrictStr
    link: StrictStr
    durationSec: StrictInt


class Feedback(Spec):
    """One feedback. No `orderStatus`: WB's current schema has none (older copies listed it)."""

    id: StrictStr
    text: StrictStr
    pros: StrictStr
    cons: StrictStr
    productValuation: StrictInt
    createdDate: StrictStr
    answer: FeedbackAnswer | None
    state: Literal["none", "wbRu"]
    productDetails: FeedbackProductDetails
    photoLinks: list[PhotoLink] | None
    video: FeedbackVideo | None
    wasViewed: StrictBool
    userName: StrictStr
    matchingSize: StrictStr
    isAbleSupplierFeedbackValuation: StrictBool
    supplierFeedbackValuation: StrictInt
    isAbleSupplierProductValuation: StrictBool
    supplierProductValuation: StrictInt
    isAbleReturnProductOrders: StrictBool
    returnProductOrdersDate: StrictStr | None
    bables: list[StrictStr] | None
    lastOrderShkId: StrictInt
    lastOrderCreatedAt: StrictStr
    color: StrictStr
    subjectId: StrictInt
    subjectName: StrictStr
    parentFeedbackId: StrictStr | None
    childFeedbackId: StrictStr | None


class FeedbacksData(Spec):
    countUnanswered: StrictInt
    countArchive: StrictInt
    feedbacks: list[Feedback]


class FeedbacksList(_Envelope):
    data: FeedbacksData


class FeedbackOne(_Envelope):
    data: Feedback


# --- content: the cards list ([PROD]) ----------------------------------------------------------------------


class CardSize(Spec):
    chrtID: StrictInt
    techSize: StrictStr
    wbSize: StrictStr
    skus: list[StrictStr]


class CardPhoto(Spec):
    big: StrictStr
    c246x328: StrictStr
    c516x688: StrictStr
    square: StrictStr
    tm: StrictStr


class CardDimensions(Spec):
    length: StrictInt
    width: StrictInt
    height: StrictInt
    weightBrutto: float
    isValid: StrictBool


class Card(Spec):
    nmID: StrictInt
    imtID: StrictInt
    nmUUID: StrictStr
    subjectID: StrictInt
    subjectName: StrictStr
    vendorCode: StrictStr
    brand: StrictStr
    title: StrictStr
    description: StrictStr
    needKiz: StrictBool
    photos: list[CardPhoto]
    dimensions: CardDimensions
    characteristics: list[dict[str, object]]
    sizes: list[CardSize]
    tags: list[dict[str, object]]
    createdAt: StrictStr
    updatedAt: StrictStr


class CardsCursor(Spec):
    updatedAt: StrictStr | None = None
    nmID: StrictInt | None = None
    total: StrictInt


class CardsList(Spec):
    cards: list[Card]
    cursor: CardsCursor


# --- buyer chat --------------------------------------------------------------------------------------------


class Listing(Spec):
    """`Listing`: the product / order card of a chat or a message."""

    nmID: StrictInt
    price: StrictInt
    priceCurrency: StrictStr
    rid: StrictStr
    size: StrictStr


class LastMessage(Spec):
    text: StrictStr
    addTimestamp: StrictInt


class Chat(Spec):
    chatID: StrictStr
    replySign: StrictStr
    clientName: StrictStr
    goodCard: Listing | None = None
    lastMessage: LastMessage | None = None


class ChatsResponse(Spec):
    result: list[Chat]
    errors: list[StrictStr] | None


class ChatFile(Spec):
    contentType: StrictStr
    date: StrictStr
    downloadID: StrictStr
    name: StrictStr
    url: StrictStr
    size: StrictInt


class ChatImage(Spec):
    date: StrictStr
    downloadID: StrictStr
    url: StrictStr


class EventAttachments(Spec):
    goodCard: Listing | None = None
    files: list[ChatFile] | None = None
    images: list[ChatImage] | None = None


class EventMessage(Spec):
    attachments: EventAttachments | None = None
    text: StrictStr | None = None


class Event(Spec):
    chatID: StrictStr
    eventID: StrictStr
    eventType: Literal["message"]
    isNewChat: StrictBool
    message: EventMessage
    source: Literal["seller-portal", "seller-public-api", "rusite", "global", "ios", "android"]
    addTimestamp: StrictInt
    addTime: StrictStr
    replySign: StrictStr | None = None  # only when isNewChat is true
    sender: Literal["client", "seller", "wb"]
    clientName: StrictStr


class EventsResult(Spec):
    next: StrictInt
    newestEventTime: StrictStr | None = None
    oldestEventTime: StrictStr | None = None
    totalEvents: StrictInt
    events: list[Event]


class EventsResponse(Spec):
    result: EventsResult
    errors: list[StrictStr] | None


class MessageResult(Spec):
    addTime: StrictInt
    chatID: StrictStr
    sign: StrictStr


class MessageResponse(Spec):
    result: MessageResult
    errors: list[StrictStr]


class DownloadPending(Spec):
    """The 202 of `GET /api/v1/seller/download/{id}`: the file is still in moderation."""

    moderationState: Literal["pending"]
    retrySeconds: StrictInt
