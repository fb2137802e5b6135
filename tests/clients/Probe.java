// A BI tool's JDBC path against `warehouse-ml serve`, on pgjdbc (Debian's libpostgresql-jdbc-java).
// Run: java -cp /usr/share/java/postgresql.jar Probe.java PORT [USER PASSWORD]
// Prints one "ok <check>" line per check and exits non-zero on the first failure.
import java.sql.*;
import java.util.*;

public class Probe {
    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError("FAILED: " + what);
        System.out.println("ok " + what);
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/shop?sslmode=disable&connectTimeout=20";
        Properties props = new Properties();
        props.setProperty("user", args.length > 1 ? args[1] : "analyst");
        if (args.length > 2) props.setProperty("password", args[2]);
        try (Connection con = DriverManager.getConnection(url, props)) {
            DatabaseMetaData md = con.getMetaData();
            check(md.getDatabaseProductName().equals("PostgreSQL"), "product name " + md.getDatabaseProductName());
            Set<String> tables = new TreeSet<>();
            try (ResultSet rs = md.getTables(null, null, "%", new String[] {"TABLE", "VIEW"})) {
                while (rs.next()) tables.add(rs.getString("TABLE_SCHEM") + "." + rs.getString("TABLE_NAME"));
            }
            check(tables.contains("main.users") && tables.contains("main.big"), "getTables lists " + tables);
            Map<String, Integer> columns = new LinkedHashMap<>();
            try (ResultSet rs = md.getColumns(null, "main", "users", "%")) {
                while (rs.next()) columns.put(rs.getString("COLUMN_NAME"), rs.getInt("DATA_TYPE"));
            }
            check(columns.get("user_id") == Types.BIGINT && columns.get("channel") == Types.VARCHAR
                  && columns.get("recency_days") == Types.DOUBLE, "getColumns types " + columns);

            // streaming with a fetch size, the way JDBC tools read large results: every row must arrive
            con.setAutoCommit(false);
            try (Statement st = con.createStatement()) {
                st.setFetchSize(50);
                long n = 0, sum = 0;
                try (ResultSet rs = st.executeQuery("SELECT id FROM big ORDER BY id")) {
                    while (rs.next()) { n++; sum += rs.getLong(1); }
                }
                check(n == 2000 && sum == 1999L * 2000 / 2, "fetch size 50 streamed " + n + " rows");
            }
            con.commit();
            con.setAutoCommit(true);

            try (PreparedStatement ps = con.prepareStatement("SELECT count(*) FROM big WHERE day >= ? AND flag = ? AND amount > ?")) {
                ps.setDate(1, java.sql.Date.valueOf("2024-01-15"));
                ps.setBoolean(2, true);
                ps.setBigDecimal(3, new java.math.BigDecimal("10.5"));
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    check(rs.getLong(1) > 0, "setDate/setBoolean/setBigDecimal count " + rs.getLong(1));
                }
            }
            try (PreparedStatement ps = con.prepareStatement("SELECT ts FROM big WHERE id = ?")) {
                for (int i = 0; i < 7; i++) {  // past prepareThreshold: a named server-side statement
                    ps.setInt(1, i);
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        check(rs.getTimestamp(1).toString().startsWith("2024-01-01"), "timestamp row " + i);
                    }
                }
            }
            try (Statement st = con.createStatement();
                 ResultSet rs = st.executeQuery("SELECT user_id, predict_churn(*) FROM users ORDER BY user_id LIMIT 5")) {
                ResultSetMetaData rmd = rs.getMetaData();
                int n = 0;
                while (rs.next()) {
                    double p = rs.getDouble(2);
                    check(p >= 0 && p <= 1, "predict_churn(*) row " + rs.getLong(1) + " = " + p);
                    n++;
                }
                check(n == 5, "predict_churn(*) rows " + n + ", column " + rmd.getColumnName(2));
            }
            try (Statement st = con.createStatement()) {
                try {
                    st.executeQuery("SELECT * FROM no_such_table");
                    check(false, "an error for a missing table");
                } catch (SQLException e) {
                    check(true, "missing table error: " + e.getSQLState());
                }
                try (ResultSet rs = st.executeQuery("SELECT 1")) {
                    rs.next();
                    check(rs.getInt(1) == 1, "session usable after an error");
                }
            }
        }
        System.out.println("PROBE PASSED");
    }
}
