//! The OpenAPI 3 description of the HTTP API, served at `/openapi.json`. Hand-written (the API
//! is small and its documentation is part of the product); a test checks that it parses and
//! names every route the router serves.

pub const SPEC: &str = r##"{
  "openapi": "3.0.3",
  "info": {
    "title": "sessionrank",
    "version": "1",
    "description": "Session events and catalog in, versioned re-ranking models out. Errors are JSON `{\"error\": message, \"field\": json path}`; `field` names the input at fault (e.g. `events[3].item_id`)."
  },
  "paths": {
    "/v1/events": {
      "post": {
        "summary": "Store a batch of session events",
        "description": "One transaction per request: all events are stored or none. Answered only after the commit (durable). Every item_id must be in the catalog (422 naming `events[i].item_id` otherwise). With an Idempotency-Key a retry stores nothing and returns the first answer (header `Idempotent-Replayed: true`); the same key with another body is a 422. Keys are kept 24 hours.",
        "security": [{"ingestKey": []}],
        "parameters": [
          {"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string", "minLength": 1, "maxLength": 255}}
        ],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventBatch"}}}},
        "responses": {
          "200": {"description": "Stored", "content": {"application/json": {"schema": {"type": "object", "properties": {"accepted": {"type": "integer"}}}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "403": {"$ref": "#/components/responses/WrongScope"},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "413": {"$ref": "#/components/responses/TooLarge"},
          "415": {"$ref": "#/components/responses/Error"},
          "422": {"$ref": "#/components/responses/Invalid"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/v1/items": {
      "put": {
        "summary": "Insert or update catalog items",
        "description": "`price` (number or numeric string, shop currency) becomes a log2 price level; or give `price_level` 0..15. NaN, infinite or negative prices are a 422 naming the field. Items are never deleted, only withdrawn; a PUT makes a withdrawn item available again. One transaction per request.",
        "security": [{"ingestKey": []}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ItemBatch"}}}},
        "responses": {
          "200": {"description": "Stored", "content": {"application/json": {"schema": {"type": "object", "properties": {"upserted": {"type": "integer"}}}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "403": {"$ref": "#/components/responses/WrongScope"},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "413": {"$ref": "#/components/responses/TooLarge"},
          "422": {"$ref": "#/components/responses/Invalid"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/v1/items/{id}": {
      "delete": {
        "summary": "Withdraw an item: off the candidate pages at once, kept for the models",
        "security": [{"ingestKey": []}],
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": {
          "200": {"description": "Withdrawn", "content": {"application/json": {"schema": {"type": "object", "properties": {"withdrawn": {"type": "string"}}}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "403": {"$ref": "#/components/responses/WrongScope"},
          "404": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/v1/sessions/{id}": {
      "delete": {
        "summary": "Erase a session: every stored event of this session id (idempotent)",
        "security": [{"ingestKey": []}],
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": {
          "200": {"description": "Erased", "content": {"application/json": {"schema": {"type": "object", "properties": {"session_id": {"type": "string"}, "deleted_events": {"type": "integer"}}}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "403": {"$ref": "#/components/responses/WrongScope"}
        }
      }
    },
    "/v1/candidates": {
      "get": {
        "summary": "A page of candidate items in upstream order (most-interacted first), with their vectors",
        "description": "For shops without their own retrieval, and the demo page: catalog items ordered by stored event count (items without events follow in catalog order), each with its content and `vector`: the live model's item vector (items the model knows: id + trained content; new items: their stored content). A browser scores the page with the browser bundle of `model_version` (`/v1/models/{model_version}/browser/manifest.json`) over these vectors. Without a live model `model_version` is null and items carry no vector (keep the upstream order). `Cache-Control: public, max-age=60`.",
        "parameters": [
          {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 48}}
        ],
        "responses": {
          "200": {"description": "Candidates", "content": {"application/json": {"schema": {"type": "object", "properties": {"source": {"type": "string"}, "model_version": {"type": "string", "nullable": true, "description": "The version the vectors belong to"}, "items": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"}, "text": {"type": "string"}, "category": {"type": "string", "nullable": true}, "price_level": {"type": "integer", "nullable": true}, "events": {"type": "integer"}, "vector": {"type": "array", "items": {"type": "number"}, "description": "d_model floats; absent without a live model"}}}}}}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "422": {"$ref": "#/components/responses/Invalid"}
        }
      }
    },
    "/v1/models": {
      "get": {
        "summary": "Published model versions, newest first",
        "responses": {"200": {"description": "Versions", "content": {"application/json": {"schema": {"type": "object", "properties": {"current": {"type": "string", "nullable": true}, "versions": {"type": "array", "items": {"type": "object"}}}}}}}}
      }
    },
    "/v1/models/current": {
      "get": {
        "summary": "The live model's manifest",
        "description": "`Cache-Control: no-cache`, `ETag: \"<sha256 of the manifest>\"`; 304 on a matching If-None-Match. The manifest lists every file of the bundle with its sha256 and size.",
        "responses": {
          "200": {"description": "manifest.json", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Manifest"}}}},
          "304": {"description": "Not modified"},
          "404": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/v1/models/current/browser": {
      "get": {
        "summary": "The live model's browser manifest",
        "description": "The manifest of the live version's browser bundle (`kind: browser`, the same `model_version`): weights without the item-id and token tables, and `categories.json`; no tokenizer, no item index. What a shopper's browser loads; item vectors come with the candidate page. `Cache-Control: no-cache`, `ETag: \"<sha256 of the manifest>\"`; 304 on a matching If-None-Match.",
        "responses": {
          "200": {"description": "manifest.json", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Manifest"}}}},
          "304": {"description": "Not modified"},
          "404": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/v1/models/{version}/{file}": {
      "get": {
        "summary": "A file of a published bundle (immutable)",
        "description": "`Cache-Control: public, max-age=31536000, immutable`; `ETag: \"<sha256>\"` (the manifest's checksum of the file); 304 on a matching If-None-Match.",
        "parameters": [
          {"name": "version", "in": "path", "required": true, "schema": {"type": "string"}},
          {"name": "file", "in": "path", "required": true, "schema": {"type": "string", "enum": ["manifest.json", "weights.bpk", "tokenizer.json", "items.json", "model.safetensors"]}}
        ],
        "responses": {
          "200": {"description": "The file", "content": {"application/octet-stream": {}, "application/json": {}}},
          "304": {"description": "Not modified"},
          "404": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/v1/models/{version}/browser/{file}": {
      "get": {
        "summary": "A file of a published version's browser bundle (immutable)",
        "description": "`Cache-Control: public, max-age=31536000, immutable`; `ETag: \"<sha256>\"` (the browser manifest's checksum of the file); 304 on a matching If-None-Match.",
        "parameters": [
          {"name": "version", "in": "path", "required": true, "schema": {"type": "string"}},
          {"name": "file", "in": "path", "required": true, "schema": {"type": "string", "enum": ["manifest.json", "weights.bpk", "categories.json"]}}
        ],
        "responses": {
          "200": {"description": "The file", "content": {"application/octet-stream": {}, "application/json": {}}},
          "304": {"description": "Not modified"},
          "404": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/v1/models/{version}/vectors": {
      "get": {
        "summary": "Item vectors of a page of candidates (immutable)",
        "description": "The version's item encoder applied to the given items, so a browser running the browser bundle can score a shop's own candidate page without a request per click. Ids the model knows are encoded from id + trained content; ids it does not know but the catalog has, from their stored content (listed in `from_content`); ids neither knows are listed in `missing`. When every id is known the answer is immutable (`Cache-Control: public, max-age=31536000, immutable`); otherwise it depends on the catalog too (`public, max-age=60`). ETag: sha256 of the body.",
        "parameters": [
          {"name": "version", "in": "path", "required": true, "schema": {"type": "string"}},
          {"name": "ids", "in": "query", "required": true, "description": "Comma-separated item ids, at most 1000", "schema": {"type": "string"}}
        ],
        "responses": {
          "200": {"description": "Vectors", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Vectors"}}}},
          "304": {"description": "Not modified"},
          "404": {"$ref": "#/components/responses/Error"},
          "422": {"$ref": "#/components/responses/Invalid"}
        }
      },
      "post": {
        "summary": "Item vectors of a shop's own list, ids in the body",
        "description": "The GET's answer for a list too long for a URL (a shop's own search results): `{\"ids\": [\"a\", \"b\", …]}`, at most 1000 distinct ids (repeats are answered once, in first-seen order). The version is checked first (404 before the body is read). `Cache-Control: no-store`. A 422 names the field at fault (`ids`, `ids[3]`).",
        "parameters": [
          {"name": "version", "in": "path", "required": true, "schema": {"type": "string"}}
        ],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["ids"], "additionalProperties": false, "properties": {"ids": {"type": "array", "maxItems": 1000, "items": {"type": "string", "minLength": 1}}}}}}},
        "responses": {
          "200": {"description": "Vectors", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Vectors"}}}},
          "400": {"$ref": "#/components/responses/Invalid"},
          "404": {"$ref": "#/components/responses/Error"},
          "415": {"$ref": "#/components/responses/Error"},
          "422": {"$ref": "#/components/responses/Invalid"}
        }
      }
    },
    "/admin/retrain": {
      "post": {
        "summary": "Start a retraining job",
        "description": "Trains on the stored catalog and events, evaluates the new and the live model on the most recent held-out sessions, and publishes the new model only if its MRR@20 is at least the live model's minus the configured tolerance.",
        "security": [{"bearer": []}],
        "responses": {
          "202": {"description": "Started (Location: /admin/jobs/{id})", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "403": {"$ref": "#/components/responses/AdminDisabled"},
          "409": {"description": "A job is running", "content": {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}, "job_id": {"type": "string"}}}}}}
        }
      }
    },
    "/admin/jobs/{id}": {
      "get": {
        "summary": "A retraining job: state, stage, progress, metrics, reason",
        "security": [{"bearer": []}],
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": {
          "200": {"description": "The job", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "403": {"$ref": "#/components/responses/AdminDisabled"},
          "404": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/admin/models": {
      "post": {
        "summary": "Publish a bundle trained elsewhere (sessionrank publish): one tar archive of manifest.json and the files it lists; every file verified before anything is stored",
        "security": [{"bearer": []}],
        "parameters": [{"name": "activate", "in": "query", "required": false, "schema": {"type": "boolean", "default": false}}],
        "requestBody": {"required": true, "content": {"application/x-tar": {"schema": {"type": "string", "format": "binary"}}}},
        "responses": {
          "201": {"description": "Published (and live with activate=true)", "content": {"application/json": {"schema": {"type": "object", "properties": {"model_version": {"type": "string"}, "live": {"type": "boolean"}, "files": {"type": "object", "additionalProperties": {"type": "integer"}}}}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "403": {"$ref": "#/components/responses/AdminDisabled"},
          "409": {"$ref": "#/components/responses/Error"},
          "413": {"$ref": "#/components/responses/Error"},
          "415": {"$ref": "#/components/responses/Error"},
          "422": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/admin/models/{version}/activate": {
      "post": {
        "summary": "Make a published version live (roll back or forward)",
        "security": [{"bearer": []}],
        "parameters": [{"name": "version", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": {
          "200": {"description": "Now live", "content": {"application/json": {"schema": {"type": "object", "properties": {"model_version": {"type": "string"}, "manifest": {"$ref": "#/components/schemas/Manifest"}}}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "403": {"$ref": "#/components/responses/AdminDisabled"},
          "404": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/admin/stats": {
      "get": {
        "summary": "Stored events, items and models; the live version; the running job",
        "security": [{"bearer": []}],
        "responses": {
          "200": {"description": "Counts", "content": {"application/json": {"schema": {"type": "object"}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "403": {"$ref": "#/components/responses/AdminDisabled"}
        }
      }
    },
    "/healthz": {
      "get": {
        "summary": "Liveness and database reachability",
        "responses": {"200": {"description": "Healthy"}, "503": {"description": "The database does not answer"}}
      }
    },
    "/readyz": {
      "get": {
        "summary": "Readiness: the database answers and a model is live",
        "responses": {"200": {"description": "Ready"}, "503": {"description": "Not ready; `reasons` says why"}}
      }
    },
    "/metrics": {
      "get": {
        "summary": "Prometheus metrics (text format 0.0.4)",
        "responses": {"200": {"description": "Metrics", "content": {"text/plain": {}}}}
      }
    },
    "/openapi.json": {
      "get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3"}}}
    }
  },
  "components": {
    "securitySchemes": {
      "bearer": {"type": "http", "scheme": "bearer", "description": "The token in SESSIONRANK_ADMIN_TOKEN. Without one configured the admin API answers 403."},
      "ingestKey": {"type": "http", "scheme": "bearer", "description": "An ingest key (SESSIONRANK_INGEST_KEYS or [[ingest_keys]]) with the route's scope: `events` for events and session erasure, `items` for the catalog. Distinct from the admin token."}
    },
    "responses": {
      "Error": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "BadRequest": {"description": "Malformed JSON or header", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Invalid": {"description": "A value is unacceptable; `field` names it", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "TooLarge": {"description": "The body exceeds the configured limit", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Unauthorized": {"description": "Missing or wrong bearer token", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "WrongScope": {"description": "The ingest key lacks the route's scope", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "AdminDisabled": {"description": "No admin token is configured", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Unavailable": {"description": "The database is unavailable (`unavailable`: unreachable, locked, full, read-only, overloaded); nothing was stored: retry after `Retry-After` seconds, with the same Idempotency-Key", "headers": {"Retry-After": {"schema": {"type": "integer"}}}, "content": {"application/json": {"schema": {"type": "object", "required": ["error", "unavailable"], "properties": {"error": {"type": "string"}, "unavailable": {"type": "string"}, "retry_after_seconds": {"type": "integer"}}}}}}
    },
    "schemas": {
      "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}, "field": {"type": "string"}}},
      "Event": {
        "type": "object", "additionalProperties": false,
        "required": ["session_id", "item_id", "type", "timestamp"],
        "properties": {
          "session_id": {"type": "string", "minLength": 1, "maxLength": 256},
          "item_id": {"type": "string", "minLength": 1, "maxLength": 256},
          "type": {"type": "string", "enum": ["view", "click", "add_to_cart", "purchase"]},
          "timestamp": {"type": "integer", "description": "Seconds since the Unix epoch"}
        }
      },
      "EventBatch": {"type": "object", "additionalProperties": false, "required": ["events"], "properties": {"events": {"type": "array", "minItems": 1, "maxItems": 10000, "items": {"$ref": "#/components/schemas/Event"}}}},
      "Item": {
        "type": "object", "additionalProperties": false, "required": ["id"],
        "properties": {
          "id": {"type": "string", "minLength": 1, "maxLength": 256},
          "text": {"type": "string", "maxLength": 10000},
          "category": {"type": "string", "nullable": true},
          "price": {"oneOf": [{"type": "number", "minimum": 0}, {"type": "string"}], "nullable": true},
          "price_level": {"type": "integer", "minimum": 0, "maximum": 15, "nullable": true}
        }
      },
      "ItemBatch": {"type": "object", "additionalProperties": false, "required": ["items"], "properties": {"items": {"type": "array", "minItems": 1, "maxItems": 10000, "items": {"$ref": "#/components/schemas/Item"}}}},
      "Manifest": {
        "type": "object",
        "properties": {
          "format_version": {"type": "integer"},
          "kind": {"type": "string", "enum": ["full", "browser"], "description": "Absent means full"},
          "model_version": {"type": "string"},
          "created_at": {"type": "integer"},
          "dataset": {"type": "string"},
          "config": {"type": "object"},
          "features": {"type": "object"},
          "files": {"type": "object", "additionalProperties": {"type": "object", "properties": {"sha256": {"type": "string"}, "bytes": {"type": "integer"}}}},
          "metrics": {"type": "object"}
        }
      },
      "Vectors": {
        "type": "object",
        "properties": {
          "model_version": {"type": "string"},
          "dim": {"type": "integer"},
          "vectors": {"type": "array", "items": {"type": "object", "properties": {"item_id": {"type": "string"}, "vector": {"type": "array", "items": {"type": "number"}}}}},
          "from_content": {"type": "array", "items": {"type": "string"}, "description": "Ids unknown to the model, encoded from the catalog's content"},
          "missing": {"type": "array", "items": {"type": "string"}, "description": "Ids neither the model nor the catalog knows"}
        }
      },
      "Job": {
        "type": "object",
        "properties": {
          "id": {"type": "string"},
          "state": {"type": "string", "enum": ["running", "succeeded", "failed"]},
          "stage": {"type": "string", "enum": ["queued", "loading", "training", "publishing", "done"]},
          "progress": {"type": "number", "description": "0..1: loading to 0.1, training to 0.8 (steps, or the time budget when that ends the run first), evaluation, publishing from 0.9"},
          "published": {"type": "boolean"},
          "model_version": {"type": "string", "nullable": true},
          "previous_version": {"type": "string", "nullable": true},
          "reason": {"type": "string", "nullable": true},
          "device": {"type": "string", "nullable": true},
          "metrics": {"type": "object", "description": "Data sizes; `training` (epoch, step, loss, latest validation metrics; updated while it trains); `warm_start` ({used, from_version, rows: {items, categories, tokens: {carried, new}}, epochs, lr} or {used: false, reason}); training history; held-out metrics of the new and the live model"},
          "created_at": {"type": "integer"},
          "updated_at": {"type": "integer"},
          "finished_at": {"type": "integer", "nullable": true}
        }
      }
    }
  }
}"##;
