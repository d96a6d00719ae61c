-- zoo.sql - sqlite3 for the zoo (its -init file): a table of 100000 rows
-- before "ready"; the shell then reads SQL from stdin:
--   select ... where k=K  ->  "answer K 13K 100000"
.mode list
.separator " "
create table if not exists t(k integer primary key, v integer);
delete from t;
with recursive c(x) as (select 0 union all select x + 1 from c where x < 99999)
	insert into t select x, 13 * x from c;
select 'ready';
