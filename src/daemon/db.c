/* ferryd's state in SQLite: one connection, serialised by a mutex, in WAL
 * mode. The schema is created and upgraded on open (schema_migrations,
 * one entry per version). JSON columns hold objects and arrays as text. */
#include "daemon/db.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "daemon/db_certificates.h"
#include "daemon/db_networks.h"
#include "daemon/db_profiles.h"
#include "daemon/db_snapshots.h"

struct db {
	sqlite3 *conn;
	pthread_mutex_t lock;
};

/* Each entry brings the schema from version i to i+1. Later issues append
 * (snapshots, profiles); never edit an entry that has shipped. */
static const char *const schema_migrations[] = {
	"CREATE TABLE instances ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  type TEXT NOT NULL DEFAULT 'container',"
	"  architecture TEXT NOT NULL DEFAULT '',"
	"  description TEXT NOT NULL DEFAULT '',"
	"  ephemeral INTEGER NOT NULL DEFAULT 0,"
	"  stateful INTEGER NOT NULL DEFAULT 0,"
	"  created_at TEXT NOT NULL DEFAULT '',"
	"  last_used_at TEXT NOT NULL DEFAULT '',"
	"  config TEXT NOT NULL DEFAULT '{}',"
	"  devices TEXT NOT NULL DEFAULT '{}',"
	"  profiles TEXT NOT NULL DEFAULT '[]');"
	"CREATE TABLE images ("
	"  fingerprint TEXT PRIMARY KEY,"
	"  filename TEXT NOT NULL DEFAULT '',"
	"  size INTEGER NOT NULL DEFAULT 0,"
	"  architecture TEXT NOT NULL DEFAULT '',"
	"  public INTEGER NOT NULL DEFAULT 0,"
	"  auto_update INTEGER NOT NULL DEFAULT 0,"
	"  created_at TEXT NOT NULL DEFAULT '',"
	"  uploaded_at TEXT NOT NULL DEFAULT '',"
	"  last_used_at TEXT NOT NULL DEFAULT '',"
	"  properties TEXT NOT NULL DEFAULT '{}');"
	"CREATE TABLE aliases ("
	"  name TEXT PRIMARY KEY,"
	"  fingerprint TEXT NOT NULL REFERENCES images(fingerprint) ON DELETE CASCADE,"
	"  description TEXT NOT NULL DEFAULT '');"
	"CREATE TABLE config ("
	"  key TEXT PRIMARY KEY,"
	"  value TEXT NOT NULL);"
	"CREATE TABLE networks ("
	"  name TEXT PRIMARY KEY,"
	"  config TEXT NOT NULL DEFAULT '{}');",
	/* Profiles. The default profile names the daemon's bridge, which only
	 * ferryd knows: profiles.c creates it at start-up. */
	"CREATE TABLE profiles ("
	"  name TEXT PRIMARY KEY,"
	"  description TEXT NOT NULL DEFAULT '',"
	"  config TEXT NOT NULL DEFAULT '{}',"
	"  devices TEXT NOT NULL DEFAULT '{}');",
	/* The trust store of the HTTPS API (db_certificates.h). */
	"CREATE TABLE certificates ("
	"  fingerprint TEXT PRIMARY KEY,"
	"  type TEXT NOT NULL DEFAULT 'client',"
	"  name TEXT NOT NULL DEFAULT '',"
	"  certificate TEXT NOT NULL,"
	"  restricted INTEGER NOT NULL DEFAULT 0,"
	"  projects TEXT NOT NULL DEFAULT '[]');",
	/* Instance snapshots (db_snapshots.h). */
	"CREATE TABLE snapshots ("
	"  id INTEGER PRIMARY KEY,"
	"  instance TEXT NOT NULL REFERENCES instances(name) ON UPDATE CASCADE ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  description TEXT NOT NULL DEFAULT '',"
	"  stateful INTEGER NOT NULL DEFAULT 0,"
	"  ephemeral INTEGER NOT NULL DEFAULT 0,"
	"  architecture TEXT NOT NULL DEFAULT '',"
	"  created_at TEXT NOT NULL DEFAULT '',"
	"  expires_at TEXT NOT NULL DEFAULT '',"
	"  last_used_at TEXT NOT NULL DEFAULT '',"
	"  config TEXT NOT NULL DEFAULT '{}',"
	"  devices TEXT NOT NULL DEFAULT '{}',"
	"  profiles TEXT NOT NULL DEFAULT '[]',"
	"  size INTEGER NOT NULL DEFAULT 0,"
	"  UNIQUE (instance, name));",
};

static int db_sql_error(struct db *db, struct ferry_error **err, const char *what)
{
	return error_set(err, 500, EIO, "database: %s: %s", what, sqlite3_errmsg(db->conn));
}

static void stmt_finalizep(sqlite3_stmt **stmt)
{
	sqlite3_finalize(*stmt);
}
#define cleanup_stmt __attribute__((cleanup(stmt_finalizep)))

static void db_unlockp(struct db **db)
{
	if (*db != NULL)
		pthread_mutex_unlock(&(*db)->lock);
}
/* Hold the connection for the rest of the scope. */
#define DB_LOCK(db)                                                                                  \
	pthread_mutex_lock(&(db)->lock);                                                             \
	__attribute__((cleanup(db_unlockp))) struct db *_db_locked = (db);                           \
	(void)_db_locked

static int db_prepare(struct db *db, const char *sql, sqlite3_stmt **stmt, struct ferry_error **err)
{
	if (sqlite3_prepare_v2(db->conn, sql, -1, stmt, NULL) != SQLITE_OK)
		return db_sql_error(db, err, sql);
	return 0;
}

static void bind_text(sqlite3_stmt *stmt, int i, const char *s)
{
	sqlite3_bind_text(stmt, i, s ? s : "", -1, SQLITE_TRANSIENT);
}

static void bind_json(sqlite3_stmt *stmt, int i, const json_t *j, const char *empty)
{
	char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
	sqlite3_bind_text(stmt, i, text ? text : empty, -1, SQLITE_TRANSIENT);
	free(text);
}

static char *column_text(sqlite3_stmt *stmt, int i)
{
	const unsigned char *t = sqlite3_column_text(stmt, i);
	return xstrdup(t ? (const char *)t : "");
}

static json_t *column_json(sqlite3_stmt *stmt, int i, bool array)
{
	const unsigned char *t = sqlite3_column_text(stmt, i);
	json_t *j = t ? json_loads((const char *)t, JSON_DECODE_ANY, NULL) : NULL;
	if (j == NULL || (array ? !json_is_array(j) : !json_is_object(j))) {
		json_decref(j);
		j = array ? json_array() : json_object();
	}
	return j;
}

/* Step a statement that returns no rows. Constraint failures become 409. */
static int db_step_done(struct db *db, sqlite3_stmt *stmt, const char *what, struct ferry_error **err)
{
	int r = sqlite3_step(stmt);
	if (r == SQLITE_DONE)
		return 0;
	if (r == SQLITE_CONSTRAINT)
		return error_set(err, 409, EEXIST, "%s: %s", what, sqlite3_errmsg(db->conn));
	return db_sql_error(db, err, what);
}

static int db_exec(struct db *db, const char *sql, struct ferry_error **err)
{
	char *msg = NULL;
	if (sqlite3_exec(db->conn, sql, NULL, NULL, &msg) != SQLITE_OK) {
		error_set(err, 500, EIO, "database: %s", msg ? msg : sqlite3_errmsg(db->conn));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int db_migrate(struct db *db, struct ferry_error **err)
{
	if (db_exec(db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);", err) < 0)
		return -1;
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db, "SELECT MAX(version) FROM schema_version", &stmt, err) < 0)
		return -1;
	int version = 0;
	if (sqlite3_step(stmt) == SQLITE_ROW)
		version = sqlite3_column_int(stmt, 0);
	int latest = sizeof(schema_migrations) / sizeof(schema_migrations[0]);
	if (version > latest)
		return error_set(err, 500, 0, "database schema version %d is newer than this ferryd (%d)", version,
				 latest);
	for (int v = version; v < latest; v++) {
		cleanup_free char *sql = xasprintf("BEGIN; %s INSERT INTO schema_version (version) VALUES (%d); COMMIT;",
						   schema_migrations[v], v + 1);
		if (db_exec(db, sql, err) < 0) {
			sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
			return error_wrap(err, "upgrade the schema to version %d", v + 1);
		}
		log_info("database schema upgraded to version %d", v + 1);
	}
	return 0;
}

int db_open(const char *path, struct db **out, struct ferry_error **err)
{
	struct db *db = xcalloc(1, sizeof(*db));
	pthread_mutex_init(&db->lock, NULL);
	if (sqlite3_open_v2(path, &db->conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			    NULL) != SQLITE_OK) {
		error_set(err, 500, EIO, "open database %s: %s", path,
			  db->conn ? sqlite3_errmsg(db->conn) : "out of memory");
		db_close(db);
		return -1;
	}
	sqlite3_busy_timeout(db->conn, 5000);
	if (db_exec(db, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;", err) < 0 ||
	    db_migrate(db, err) < 0) {
		db_close(db);
		return error_wrap(err, "open database %s", path);
	}
	*out = db;
	return 0;
}

void db_close(struct db *db)
{
	if (db == NULL)
		return;
	sqlite3_close(db->conn);
	pthread_mutex_destroy(&db->lock);
	free(db);
}

/* Names (first column) of a query's rows as a JSON array. */
static int db_list_names(struct db *db, const char *sql, const char *arg, json_t **names, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db, sql, &stmt, err) < 0)
		return -1;
	if (arg != NULL)
		bind_text(stmt, 1, arg);
	json_t *list = json_array();
	int r;
	while ((r = sqlite3_step(stmt)) == SQLITE_ROW)
		json_array_append_new(list, json_string((const char *)sqlite3_column_text(stmt, 0)));
	if (r != SQLITE_DONE) {
		json_decref(list);
		return db_sql_error(db, err, sql);
	}
	*names = list;
	return 0;
}

/* Instances */

void db_instance_clear(struct db_instance *inst)
{
	free(inst->name);
	free(inst->type);
	free(inst->architecture);
	free(inst->description);
	free(inst->created_at);
	free(inst->last_used_at);
	json_decref(inst->config);
	json_decref(inst->devices);
	json_decref(inst->profiles);
	memset(inst, 0, sizeof(*inst));
}

int db_instance_create(struct db *db, const struct db_instance *inst, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db,
		       "INSERT INTO instances (name, type, architecture, description, ephemeral, stateful, created_at,"
		       " last_used_at, config, devices, profiles) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		       &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, inst->name);
	bind_text(stmt, 2, inst->type ? inst->type : "container");
	bind_text(stmt, 3, inst->architecture);
	bind_text(stmt, 4, inst->description);
	sqlite3_bind_int(stmt, 5, inst->ephemeral);
	sqlite3_bind_int(stmt, 6, inst->stateful);
	bind_text(stmt, 7, inst->created_at);
	bind_text(stmt, 8, inst->last_used_at);
	bind_json(stmt, 9, inst->config, "{}");
	bind_json(stmt, 10, inst->devices, "{}");
	bind_json(stmt, 11, inst->profiles, "[]");
	int r = sqlite3_step(stmt);
	if (r == SQLITE_CONSTRAINT)
		return error_conflict(err, "Instance \"%s\" already exists", inst->name);
	if (r != SQLITE_DONE)
		return db_sql_error(db, err, "add instance");
	return 0;
}

int db_instance_get(struct db *db, const char *name, struct db_instance *out, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db,
		       "SELECT name, type, architecture, description, ephemeral, stateful, created_at, last_used_at,"
		       " config, devices, profiles FROM instances WHERE name = ?",
		       &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, name);
	int r = sqlite3_step(stmt);
	if (r == SQLITE_DONE)
		return error_not_found(err, "Instance not found");
	if (r != SQLITE_ROW)
		return db_sql_error(db, err, "get instance");
	memset(out, 0, sizeof(*out));
	out->name = column_text(stmt, 0);
	out->type = column_text(stmt, 1);
	out->architecture = column_text(stmt, 2);
	out->description = column_text(stmt, 3);
	out->ephemeral = sqlite3_column_int(stmt, 4);
	out->stateful = sqlite3_column_int(stmt, 5);
	out->created_at = column_text(stmt, 6);
	out->last_used_at = column_text(stmt, 7);
	out->config = column_json(stmt, 8, false);
	out->devices = column_json(stmt, 9, false);
	out->profiles = column_json(stmt, 10, true);
	return 0;
}

int db_instance_list(struct db *db, json_t **names, struct ferry_error **err)
{
	return db_list_names(db, "SELECT name FROM instances ORDER BY name", NULL, names, err);
}

int db_instance_update(struct db *db, const struct db_instance *inst, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db,
		       "UPDATE instances SET description = ?, ephemeral = ?, stateful = ?, last_used_at = ?,"
		       " config = ?, devices = ?, profiles = ? WHERE name = ?",
		       &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, inst->description);
	sqlite3_bind_int(stmt, 2, inst->ephemeral);
	sqlite3_bind_int(stmt, 3, inst->stateful);
	bind_text(stmt, 4, inst->last_used_at);
	bind_json(stmt, 5, inst->config, "{}");
	bind_json(stmt, 6, inst->devices, "{}");
	bind_json(stmt, 7, inst->profiles, "[]");
	bind_text(stmt, 8, inst->name);
	if (db_step_done(db, stmt, "update instance", err) < 0)
		return -1;
	if (sqlite3_changes(db->conn) == 0)
		return error_not_found(err, "Instance not found");
	return 0;
}

int db_instance_rename(struct db *db, const char *old_name, const char *new_name, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db, "UPDATE instances SET name = ? WHERE name = ?", &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, new_name);
	bind_text(stmt, 2, old_name);
	int r = sqlite3_step(stmt);
	if (r == SQLITE_CONSTRAINT)
		return error_conflict(err, "Instance \"%s\" already exists", new_name);
	if (r != SQLITE_DONE)
		return db_sql_error(db, err, "rename instance");
	if (sqlite3_changes(db->conn) == 0)
		return error_not_found(err, "Instance not found");
	return 0;
}

int db_instance_delete(struct db *db, const char *name, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db, "DELETE FROM instances WHERE name = ?", &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, name);
	if (db_step_done(db, stmt, "delete instance", err) < 0)
		return -1;
	if (sqlite3_changes(db->conn) == 0)
		return error_not_found(err, "Instance not found");
	return 0;
}

/* Images */

void db_image_clear(struct db_image *img)
{
	free(img->fingerprint);
	free(img->filename);
	free(img->architecture);
	free(img->created_at);
	free(img->uploaded_at);
	free(img->last_used_at);
	json_decref(img->properties);
	memset(img, 0, sizeof(*img));
}

int db_image_create(struct db *db, const struct db_image *img, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db,
		       "INSERT INTO images (fingerprint, filename, size, architecture, public, auto_update, created_at,"
		       " uploaded_at, last_used_at, properties) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		       &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, img->fingerprint);
	bind_text(stmt, 2, img->filename);
	sqlite3_bind_int64(stmt, 3, img->size);
	bind_text(stmt, 4, img->architecture);
	sqlite3_bind_int(stmt, 5, img->public);
	sqlite3_bind_int(stmt, 6, img->auto_update);
	bind_text(stmt, 7, img->created_at);
	bind_text(stmt, 8, img->uploaded_at);
	bind_text(stmt, 9, img->last_used_at);
	bind_json(stmt, 10, img->properties, "{}");
	int r = sqlite3_step(stmt);
	if (r == SQLITE_CONSTRAINT)
		return error_conflict(err, "Image with same fingerprint already exists");
	if (r != SQLITE_DONE)
		return db_sql_error(db, err, "add image");
	return 0;
}

static bool is_hex(const char *s)
{
	return *s != '\0' && strspn(s, "0123456789abcdef") == strlen(s);
}

int db_image_get(struct db *db, const char *fingerprint, struct db_image *out, struct ferry_error **err)
{
	if (!is_hex(fingerprint) || strlen(fingerprint) > 64)
		return error_not_found(err, "Image not found");
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db,
		       "SELECT fingerprint, filename, size, architecture, public, auto_update, created_at,"
		       " uploaded_at, last_used_at, properties FROM images"
		       " WHERE substr(fingerprint, 1, length(?1)) = ?1 LIMIT 2",
		       &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, fingerprint);
	int r = sqlite3_step(stmt);
	if (r == SQLITE_DONE)
		return error_not_found(err, "Image not found");
	if (r != SQLITE_ROW)
		return db_sql_error(db, err, "get image");
	memset(out, 0, sizeof(*out));
	out->fingerprint = column_text(stmt, 0);
	out->filename = column_text(stmt, 1);
	out->size = sqlite3_column_int64(stmt, 2);
	out->architecture = column_text(stmt, 3);
	out->public = sqlite3_column_int(stmt, 4);
	out->auto_update = sqlite3_column_int(stmt, 5);
	out->created_at = column_text(stmt, 6);
	out->uploaded_at = column_text(stmt, 7);
	out->last_used_at = column_text(stmt, 8);
	out->properties = column_json(stmt, 9, false);
	if (sqlite3_step(stmt) == SQLITE_ROW) {
		db_image_clear(out);
		return error_bad_request(err, "More than one image matches \"%s\"", fingerprint);
	}
	return 0;
}

int db_image_list(struct db *db, json_t **fingerprints, struct ferry_error **err)
{
	return db_list_names(db, "SELECT fingerprint FROM images ORDER BY fingerprint", NULL, fingerprints, err);
}

int db_image_update(struct db *db, const struct db_image *img, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db,
		       "UPDATE images SET filename = ?, size = ?, architecture = ?, public = ?, auto_update = ?,"
		       " last_used_at = ?, properties = ? WHERE fingerprint = ?",
		       &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, img->filename);
	sqlite3_bind_int64(stmt, 2, img->size);
	bind_text(stmt, 3, img->architecture);
	sqlite3_bind_int(stmt, 4, img->public);
	sqlite3_bind_int(stmt, 5, img->auto_update);
	bind_text(stmt, 6, img->last_used_at);
	bind_json(stmt, 7, img->properties, "{}");
	bind_text(stmt, 8, img->fingerprint);
	if (db_step_done(db, stmt, "update image", err) < 0)
		return -1;
	if (sqlite3_changes(db->conn) == 0)
		return error_not_found(err, "Image not found");
	return 0;
}

int db_image_delete(struct db *db, const char *fingerprint, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db, "DELETE FROM images WHERE fingerprint = ?", &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, fingerprint);
	if (db_step_done(db, stmt, "delete image", err) < 0)
		return -1;
	if (sqlite3_changes(db->conn) == 0)
		return error_not_found(err, "Image not found");
	return 0;
}

/* Aliases */

/* A failed insert or rename of an alias: taken name (409) or missing image (404). */
static int alias_constraint_error(struct db *db, const char *name, struct ferry_error **err)
{
	if (sqlite3_extended_errcode(db->conn) == SQLITE_CONSTRAINT_FOREIGNKEY)
		return error_not_found(err, "Image not found");
	return error_conflict(err, "Alias \"%s\" already exists", name);
}

int db_alias_create(struct db *db, const char *name, const char *fingerprint, const char *description,
		    struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db, "INSERT INTO aliases (name, fingerprint, description) VALUES (?, ?, ?)", &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, name);
	bind_text(stmt, 2, fingerprint);
	bind_text(stmt, 3, description);
	int r = sqlite3_step(stmt);
	if (r == SQLITE_CONSTRAINT)
		return alias_constraint_error(db, name, err);
	if (r != SQLITE_DONE)
		return db_sql_error(db, err, "add alias");
	return 0;
}

int db_alias_get(struct db *db, const char *name, char **fingerprint, char **description, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db, "SELECT fingerprint, description FROM aliases WHERE name = ?", &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, name);
	int r = sqlite3_step(stmt);
	if (r == SQLITE_DONE)
		return error_not_found(err, "Image alias not found");
	if (r != SQLITE_ROW)
		return db_sql_error(db, err, "get alias");
	if (fingerprint != NULL)
		*fingerprint = column_text(stmt, 0);
	if (description != NULL)
		*description = column_text(stmt, 1);
	return 0;
}

int db_alias_list(struct db *db, json_t **names, struct ferry_error **err)
{
	return db_list_names(db, "SELECT name FROM aliases ORDER BY name", NULL, names, err);
}

int db_alias_list_for(struct db *db, const char *fingerprint, json_t **aliases, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db, "SELECT name, description FROM aliases WHERE fingerprint = ? ORDER BY name", &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, fingerprint);
	json_t *list = json_array();
	int r;
	while ((r = sqlite3_step(stmt)) == SQLITE_ROW)
		json_array_append_new(list, json_pack("{s:s, s:s}", "name", sqlite3_column_text(stmt, 0),
						      "description", sqlite3_column_text(stmt, 1)));
	if (r != SQLITE_DONE) {
		json_decref(list);
		return db_sql_error(db, err, "list aliases");
	}
	*aliases = list;
	return 0;
}

int db_alias_update(struct db *db, const char *name, const char *fingerprint, const char *description,
		    struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db, "UPDATE aliases SET fingerprint = ?, description = ? WHERE name = ?", &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, fingerprint);
	bind_text(stmt, 2, description);
	bind_text(stmt, 3, name);
	int r = sqlite3_step(stmt);
	if (r == SQLITE_CONSTRAINT)
		return alias_constraint_error(db, name, err);
	if (r != SQLITE_DONE)
		return db_sql_error(db, err, "update alias");
	if (sqlite3_changes(db->conn) == 0)
		return error_not_found(err, "Image alias not found");
	return 0;
}

int db_alias_rename(struct db *db, const char *old_name, const char *new_name, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db, "UPDATE aliases SET name = ? WHERE name = ?", &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, new_name);
	bind_text(stmt, 2, old_name);
	int r = sqlite3_step(stmt);
	if (r == SQLITE_CONSTRAINT)
		return alias_constraint_error(db, new_name, err);
	if (r != SQLITE_DONE)
		return db_sql_error(db, err, "rename alias");
	if (sqlite3_changes(db->conn) == 0)
		return error_not_found(err, "Image alias not found");
	return 0;
}

int db_alias_delete(struct db *db, const char *name, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db, "DELETE FROM aliases WHERE name = ?", &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, name);
	if (db_step_done(db, stmt, "delete alias", err) < 0)
		return -1;
	if (sqlite3_changes(db->conn) == 0)
		return error_not_found(err, "Image alias not found");
	return 0;
}

/* Server config */

int db_config_get_all(struct db *db, json_t **config, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db, "SELECT key, value FROM config ORDER BY key", &stmt, err) < 0)
		return -1;
	json_t *obj = json_object();
	int r;
	while ((r = sqlite3_step(stmt)) == SQLITE_ROW)
		json_object_set_new(obj, (const char *)sqlite3_column_text(stmt, 0),
				    json_string((const char *)sqlite3_column_text(stmt, 1)));
	if (r != SQLITE_DONE) {
		json_decref(obj);
		return db_sql_error(db, err, "read server config");
	}
	*config = obj;
	return 0;
}

int db_config_set(struct db *db, const char *key, const char *value, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	const char *sql = value != NULL ? "INSERT OR REPLACE INTO config (key, value) VALUES (?, ?)"
					: "DELETE FROM config WHERE key = ?";
	if (db_prepare(db, sql, &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, key);
	if (value != NULL)
		bind_text(stmt, 2, value);
	return db_step_done(db, stmt, "set server config", err);
}

/* Networks */

int db_network_get(struct db *db, const char *name, json_t **config, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db, "SELECT config FROM networks WHERE name = ?", &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, name);
	int r = sqlite3_step(stmt);
	if (r == SQLITE_DONE)
		return error_not_found(err, "Network not found");
	if (r != SQLITE_ROW)
		return db_sql_error(db, err, "get network");
	*config = column_json(stmt, 0, false);
	return 0;
}

int db_network_set(struct db *db, const char *name, const json_t *config, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db, "INSERT OR REPLACE INTO networks (name, config) VALUES (?, ?)", &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, name);
	bind_json(stmt, 2, config, "{}");
	return db_step_done(db, stmt, "set network", err);
}

/* Profiles */

void db_profile_clear(struct db_profile *profile)
{
	free(profile->name);
	free(profile->description);
	json_decref(profile->config);
	json_decref(profile->devices);
	memset(profile, 0, sizeof(*profile));
}

int db_profile_create(struct db *db, const struct db_profile *profile, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db, "INSERT INTO profiles (name, description, config, devices) VALUES (?, ?, ?, ?)", &stmt,
		       err) < 0)
		return -1;
	bind_text(stmt, 1, profile->name);
	bind_text(stmt, 2, profile->description);
	bind_json(stmt, 3, profile->config, "{}");
	bind_json(stmt, 4, profile->devices, "{}");
	int r = sqlite3_step(stmt);
	if (r == SQLITE_CONSTRAINT)
		return error_conflict(err, "The profile already exists");
	if (r != SQLITE_DONE)
		return db_sql_error(db, err, "add profile");
	return 0;
}

int db_profile_get(struct db *db, const char *name, struct db_profile *out, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db, "SELECT name, description, config, devices FROM profiles WHERE name = ?", &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, name);
	int r = sqlite3_step(stmt);
	if (r == SQLITE_DONE)
		return error_not_found(err, "Profile not found");
	if (r != SQLITE_ROW)
		return db_sql_error(db, err, "get profile");
	memset(out, 0, sizeof(*out));
	out->name = column_text(stmt, 0);
	out->description = column_text(stmt, 1);
	out->config = column_json(stmt, 2, false);
	out->devices = column_json(stmt, 3, false);
	return 0;
}

int db_profile_list(struct db *db, json_t **names, struct ferry_error **err)
{
	return db_list_names(db, "SELECT name FROM profiles ORDER BY name", NULL, names, err);
}

int db_profile_update(struct db *db, const struct db_profile *profile, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db, "UPDATE profiles SET description = ?, config = ?, devices = ? WHERE name = ?", &stmt,
		       err) < 0)
		return -1;
	bind_text(stmt, 1, profile->description);
	bind_json(stmt, 2, profile->config, "{}");
	bind_json(stmt, 3, profile->devices, "{}");
	bind_text(stmt, 4, profile->name);
	if (db_step_done(db, stmt, "update profile", err) < 0)
		return -1;
	if (sqlite3_changes(db->conn) == 0)
		return error_not_found(err, "Profile not found");
	return 0;
}

/* Inside db_profile_rename's transaction: point every instance that lists
 * old_name at new_name, keeping the order of its list. */
static int rename_profile_references(struct db *db, const char *old_name, const char *new_name,
				     struct ferry_error **err)
{
	cleanup_stmt sqlite3_stmt *select = NULL;
	cleanup_stmt sqlite3_stmt *update = NULL;
	if (db_prepare(db,
		       "SELECT id, profiles FROM instances WHERE EXISTS"
		       " (SELECT 1 FROM json_each(instances.profiles) WHERE json_each.value = ?)",
		       &select, err) < 0 ||
	    db_prepare(db, "UPDATE instances SET profiles = ? WHERE id = ?", &update, err) < 0)
		return -1;
	bind_text(select, 1, old_name);
	int r;
	while ((r = sqlite3_step(select)) == SQLITE_ROW) {
		json_t *profiles = column_json(select, 1, true);
		size_t i;
		json_t *p;
		json_array_foreach(profiles, i, p) {
			if (json_is_string(p) && strcmp(json_string_value(p), old_name) == 0)
				json_array_set_new(profiles, i, json_string(new_name));
		}
		sqlite3_reset(update);
		bind_json(update, 1, profiles, "[]");
		sqlite3_bind_int64(update, 2, sqlite3_column_int64(select, 0));
		json_decref(profiles);
		if (db_step_done(db, update, "rename profile references", err) < 0)
			return -1;
	}
	if (r != SQLITE_DONE)
		return db_sql_error(db, err, "rename profile references");
	return 0;
}

int db_profile_rename(struct db *db, const char *old_name, const char *new_name, struct ferry_error **err)
{
	DB_LOCK(db);
	if (db_exec(db, "BEGIN", err) < 0)
		return -1;
	int ret = -1;
	{
		cleanup_stmt sqlite3_stmt *stmt = NULL;
		if (db_prepare(db, "UPDATE profiles SET name = ? WHERE name = ?", &stmt, err) < 0)
			goto out;
		bind_text(stmt, 1, new_name);
		bind_text(stmt, 2, old_name);
		int r = sqlite3_step(stmt);
		if (r == SQLITE_CONSTRAINT) {
			error_conflict(err, "Name '%s' already in use", new_name);
			goto out;
		}
		if (r != SQLITE_DONE) {
			db_sql_error(db, err, "rename profile");
			goto out;
		}
		if (sqlite3_changes(db->conn) == 0) {
			error_not_found(err, "Profile not found");
			goto out;
		}
	}
	if (rename_profile_references(db, old_name, new_name, err) < 0)
		goto out;
	ret = db_exec(db, "COMMIT", err);
out:
	if (ret < 0)
		sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
	return ret;
}

int db_profile_delete(struct db *db, const char *name, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db,
		       "DELETE FROM profiles WHERE name = ?1 AND NOT EXISTS (SELECT 1 FROM instances, json_each(instances.profiles)"
		       " WHERE json_each.value = ?1)",
		       &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, name);
	if (db_step_done(db, stmt, "delete profile", err) < 0)
		return -1;
	if (sqlite3_changes(db->conn) == 0) {
		cleanup_stmt sqlite3_stmt *exists = NULL;
		if (db_prepare(db, "SELECT 1 FROM profiles WHERE name = ?", &exists, err) < 0)
			return -1;
		bind_text(exists, 1, name);
		if (sqlite3_step(exists) == SQLITE_ROW)
			return error_bad_request(err, "Profile is currently in use");
		return error_not_found(err, "Profile not found");
	}
	return 0;
}

int db_profile_used_by(struct db *db, const char *name, json_t **instance_names, struct ferry_error **err)
{
	return db_list_names(db,
			     "SELECT name FROM instances WHERE EXISTS (SELECT 1 FROM json_each(instances.profiles)"
			     " WHERE json_each.value = ?) ORDER BY name",
			     name, instance_names, err);
}

/* Certificates */

void db_certificate_clear(struct db_certificate *cert)
{
	free(cert->fingerprint);
	free(cert->type);
	free(cert->name);
	free(cert->certificate);
	json_decref(cert->projects);
	memset(cert, 0, sizeof(*cert));
}

int db_certificate_create(struct db *db, const struct db_certificate *cert, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db,
		       "INSERT INTO certificates (fingerprint, type, name, certificate, restricted, projects)"
		       " VALUES (?, ?, ?, ?, ?, ?)",
		       &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, cert->fingerprint);
	bind_text(stmt, 2, cert->type ? cert->type : "client");
	bind_text(stmt, 3, cert->name);
	bind_text(stmt, 4, cert->certificate);
	sqlite3_bind_int(stmt, 5, cert->restricted);
	bind_json(stmt, 6, cert->projects, "[]");
	int r = sqlite3_step(stmt);
	if (r == SQLITE_CONSTRAINT)
		return error_conflict(err, "Certificate already in trust store");
	if (r != SQLITE_DONE)
		return db_sql_error(db, err, "add certificate");
	return 0;
}

int db_certificate_get(struct db *db, const char *fingerprint, struct db_certificate *out, struct ferry_error **err)
{
	if (!is_hex(fingerprint) || strlen(fingerprint) > 64)
		return error_not_found(err, "Certificate not found");
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db,
		       "SELECT fingerprint, type, name, certificate, restricted, projects FROM certificates"
		       " WHERE substr(fingerprint, 1, length(?1)) = ?1 LIMIT 2",
		       &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, fingerprint);
	int r = sqlite3_step(stmt);
	if (r == SQLITE_DONE)
		return error_not_found(err, "Certificate not found");
	if (r != SQLITE_ROW)
		return db_sql_error(db, err, "get certificate");
	memset(out, 0, sizeof(*out));
	out->fingerprint = column_text(stmt, 0);
	out->type = column_text(stmt, 1);
	out->name = column_text(stmt, 2);
	out->certificate = column_text(stmt, 3);
	out->restricted = sqlite3_column_int(stmt, 4);
	out->projects = column_json(stmt, 5, true);
	if (sqlite3_step(stmt) == SQLITE_ROW) {
		db_certificate_clear(out);
		return error_bad_request(err, "More than one certificate matches \"%s\"", fingerprint);
	}
	return 0;
}

int db_certificate_list(struct db *db, json_t **fingerprints, struct ferry_error **err)
{
	return db_list_names(db, "SELECT fingerprint FROM certificates ORDER BY fingerprint", NULL, fingerprints,
			     err);
}

int db_certificate_update(struct db *db, const struct db_certificate *cert, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db, "UPDATE certificates SET type = ?, name = ?, restricted = ?, projects = ? WHERE fingerprint = ?",
		       &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, cert->type ? cert->type : "client");
	bind_text(stmt, 2, cert->name);
	sqlite3_bind_int(stmt, 3, cert->restricted);
	bind_json(stmt, 4, cert->projects, "[]");
	bind_text(stmt, 5, cert->fingerprint);
	if (db_step_done(db, stmt, "update certificate", err) < 0)
		return -1;
	if (sqlite3_changes(db->conn) == 0)
		return error_not_found(err, "Certificate not found");
	return 0;
}

int db_certificate_delete(struct db *db, const char *fingerprint, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db, "DELETE FROM certificates WHERE fingerprint = ?", &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, fingerprint);
	if (db_step_done(db, stmt, "delete certificate", err) < 0)
		return -1;
	if (sqlite3_changes(db->conn) == 0)
		return error_not_found(err, "Certificate not found");
	return 0;
}

bool db_certificate_trusted(struct db *db, const char *fingerprint)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db, "SELECT 1 FROM certificates WHERE fingerprint = ? AND type = 'client'", &stmt, NULL) < 0)
		return false;
	bind_text(stmt, 1, fingerprint);
	return sqlite3_step(stmt) == SQLITE_ROW;
}

/* Snapshots */

void db_snapshot_clear(struct db_snapshot *snap)
{
	free(snap->instance);
	free(snap->name);
	free(snap->description);
	free(snap->architecture);
	free(snap->created_at);
	free(snap->expires_at);
	free(snap->last_used_at);
	json_decref(snap->config);
	json_decref(snap->devices);
	json_decref(snap->profiles);
	memset(snap, 0, sizeof(*snap));
}

int db_snapshot_create(struct db *db, const struct db_snapshot *snap, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db,
		       "INSERT INTO snapshots (instance, name, description, stateful, ephemeral, architecture,"
		       " created_at, expires_at, last_used_at, config, devices, profiles, size)"
		       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		       &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, snap->instance);
	bind_text(stmt, 2, snap->name);
	bind_text(stmt, 3, snap->description);
	sqlite3_bind_int(stmt, 4, snap->stateful);
	sqlite3_bind_int(stmt, 5, snap->ephemeral);
	bind_text(stmt, 6, snap->architecture);
	bind_text(stmt, 7, snap->created_at);
	bind_text(stmt, 8, snap->expires_at);
	bind_text(stmt, 9, snap->last_used_at);
	bind_json(stmt, 10, snap->config, "{}");
	bind_json(stmt, 11, snap->devices, "{}");
	bind_json(stmt, 12, snap->profiles, "[]");
	sqlite3_bind_int64(stmt, 13, snap->size);
	int r = sqlite3_step(stmt);
	if (r == SQLITE_CONSTRAINT)
		return error_conflict(err, "Snapshot \"%s\" already exists", snap->name);
	if (r != SQLITE_DONE)
		return db_sql_error(db, err, "add snapshot");
	return 0;
}

int db_snapshot_get(struct db *db, const char *instance, const char *name, struct db_snapshot *out,
		    struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db,
		       "SELECT instance, name, description, stateful, ephemeral, architecture, created_at, expires_at,"
		       " last_used_at, config, devices, profiles, size FROM snapshots WHERE instance = ? AND name = ?",
		       &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, instance);
	bind_text(stmt, 2, name);
	int r = sqlite3_step(stmt);
	if (r == SQLITE_DONE)
		return error_not_found(err, "Snapshot not found");
	if (r != SQLITE_ROW)
		return db_sql_error(db, err, "get snapshot");
	memset(out, 0, sizeof(*out));
	out->instance = column_text(stmt, 0);
	out->name = column_text(stmt, 1);
	out->description = column_text(stmt, 2);
	out->stateful = sqlite3_column_int(stmt, 3);
	out->ephemeral = sqlite3_column_int(stmt, 4);
	out->architecture = column_text(stmt, 5);
	out->created_at = column_text(stmt, 6);
	out->expires_at = column_text(stmt, 7);
	out->last_used_at = column_text(stmt, 8);
	out->config = column_json(stmt, 9, false);
	out->devices = column_json(stmt, 10, false);
	out->profiles = column_json(stmt, 11, true);
	out->size = sqlite3_column_int64(stmt, 12);
	return 0;
}

int db_snapshot_list(struct db *db, const char *instance, json_t **names, struct ferry_error **err)
{
	return db_list_names(db, "SELECT name FROM snapshots WHERE instance = ? ORDER BY created_at, id", instance,
			     names, err);
}

int db_snapshot_update(struct db *db, const struct db_snapshot *snap, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db, "UPDATE snapshots SET description = ?, expires_at = ? WHERE instance = ? AND name = ?",
		       &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, snap->description);
	bind_text(stmt, 2, snap->expires_at);
	bind_text(stmt, 3, snap->instance);
	bind_text(stmt, 4, snap->name);
	if (db_step_done(db, stmt, "update snapshot", err) < 0)
		return -1;
	if (sqlite3_changes(db->conn) == 0)
		return error_not_found(err, "Snapshot not found");
	return 0;
}

int db_snapshot_rename(struct db *db, const char *instance, const char *old_name, const char *new_name,
		       struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db, "UPDATE snapshots SET name = ? WHERE instance = ? AND name = ?", &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, new_name);
	bind_text(stmt, 2, instance);
	bind_text(stmt, 3, old_name);
	int r = sqlite3_step(stmt);
	if (r == SQLITE_CONSTRAINT)
		return error_conflict(err, "Snapshot \"%s\" already exists", new_name);
	if (r != SQLITE_DONE)
		return db_sql_error(db, err, "rename snapshot");
	if (sqlite3_changes(db->conn) == 0)
		return error_not_found(err, "Snapshot not found");
	return 0;
}

int db_snapshot_delete(struct db *db, const char *instance, const char *name, struct ferry_error **err)
{
	DB_LOCK(db);
	cleanup_stmt sqlite3_stmt *stmt = NULL;
	if (db_prepare(db, "DELETE FROM snapshots WHERE instance = ? AND name = ?", &stmt, err) < 0)
		return -1;
	bind_text(stmt, 1, instance);
	bind_text(stmt, 2, name);
	if (db_step_done(db, stmt, "delete snapshot", err) < 0)
		return -1;
	if (sqlite3_changes(db->conn) == 0)
		return error_not_found(err, "Snapshot not found");
	return 0;
}
